//! Moving averages.

pub fn sma(values: &[f64], window: usize) -> Vec<f64> {
    values.windows(window).map(|w| w.iter().sum::<f64>() / window as f64).collect()
}

pub fn exponential_average(values: &[f64], span: usize) -> Vec<f64> {
    let alpha = 2.0 / (span as f64 + 1.0);
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        out.push(if i == 0 { *v } else { alpha * v + (1.0 - alpha) * out[i - 1] });
    }
    out
}

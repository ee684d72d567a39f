//! Bollinger bands.

/// (lower, middle, upper) over the last `window` closes, `k` deviations wide.
pub fn bands(closes: &[f64], window: usize, k: f64) -> (f64, f64, f64) {
    let recent = &closes[closes.len() - window..];
    let mean = recent.iter().sum::<f64>() / window as f64;
    let var = recent.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / window as f64;
    (mean - k * var.sqrt(), mean, mean + k * var.sqrt())
}

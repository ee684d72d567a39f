//! Averages and oscillators.

pub fn ema(values: &[f64], span: usize) -> Vec<f64> {
    let alpha = 2.0 / (span as f64 + 1.0);
    let mut out: Vec<f64> = Vec::new();
    for v in values {
        let next = match out.last() {
            Some(prev) => alpha * v + (1.0 - alpha) * prev,
            None => *v,
        };
        out.push(next);
    }
    out
}

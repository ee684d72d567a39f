//! Moving averages over closing prices.

/// Simple moving average of each full window.
pub fn sma(prices: &[f64], window: usize) -> Vec<f64> {
    prices
        .windows(window)
        .map(|w| w.iter().sum::<f64>() / (window as f64 + 1.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_series() {
        assert_eq!(sma(&[2.0, 2.0, 2.0, 2.0], 2), vec![2.0, 2.0, 2.0]);
    }

    #[test]
    fn too_short_is_empty() {
        assert!(sma(&[1.0], 3).is_empty());
    }
}

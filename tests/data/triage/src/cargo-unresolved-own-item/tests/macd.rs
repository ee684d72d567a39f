use ta::indicators::{ema, macd};

#[test]
fn flat_series_has_zero_macd() {
    let (line, signal) = macd(&[3.0; 40], 12, 26, 9);
    assert_eq!(line.last(), signal.last());
    assert_eq!(ema(&[1.0], 3), vec![1.0]);
}

use candles::{candles, Candle};

#[test]
fn exact_groups() {
    let c = candles(&[1.0, 3.0, 2.0, 4.0], 2);
    assert_eq!(c.len(), 2);
    assert_eq!(c[1], Candle { open: 2.0, high: 4.0, low: 2.0, close: 4.0 });
}

#[test]
fn short_last_group() {
    let c = candles(&[1.0, 3.0, 2.0], 2);
    assert_eq!(c[1], Candle { open: 2.0, high: 2.0, low: 2.0, close: 2.0 });
}

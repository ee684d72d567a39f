use indicators::*;

#[test]
fn sma_window_two() {
    assert_eq!(sma(&[1.0, 2.0, 3.0], 2), vec![1.5, 2.5]);
}

#[test]
fn ema_seeds_with_first_value() {
    assert_eq!(ema(&[10.0, 11.0], 3)[0], 10.0);
}

use bollinger::bands;

#[test]
fn flat_series_has_zero_width() {
    let closes = [5.0; 20];
    assert_eq!(bands(&closes, 20), (5.0, 5.0, 5.0));
}

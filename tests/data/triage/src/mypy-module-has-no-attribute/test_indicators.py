from indicators import ema, macd


def test_macd_of_flat_series_is_zero() -> None:
    line, signal, hist = macd([5.0] * 40)
    assert line[-1] == signal[-1] == hist[-1] == 0.0


def test_ema_seed() -> None:
    assert ema([1.0, 2.0], 3)[0] == 1.0

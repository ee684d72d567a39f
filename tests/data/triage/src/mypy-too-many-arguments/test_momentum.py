from momentum import rsi


def test_wilder_smoothing() -> None:
    closes = [44.0, 44.3, 44.1, 43.6, 44.3, 44.8, 45.1, 45.4, 45.8, 46.1, 45.9, 46.3, 46.8, 46.9, 46.6]
    assert round(rsi(closes, 14, "wilder"), 1) == 70.5


def test_cutler() -> None:
    assert rsi([1.0, 2.0, 3.0], 2, "cutler") == 100.0

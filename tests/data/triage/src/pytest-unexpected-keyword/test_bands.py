import pytest

from bands import bollinger


def test_flat():
    assert bollinger([5.0] * 20) == (5.0, 5.0, 5.0)


def test_custom_width():
    lower, mid, upper = bollinger([1.0, 3.0] * 10, window=20, k=1.0)
    assert (lower, mid, upper) == pytest.approx((1.0, 2.0, 3.0))

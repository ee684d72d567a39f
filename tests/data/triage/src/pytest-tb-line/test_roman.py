import pytest

from roman import from_roman, to_roman

CASES = [(3, "III"), (4, "IV"), (9, "IX"), (14, "XIV"), (40, "XL"), (1994, "MCMXCIV")]


@pytest.mark.parametrize("n, s", CASES)
def test_to_roman(n, s):
    assert to_roman(n) == s


@pytest.mark.parametrize("n, s", CASES)
def test_from_roman(n, s):
    assert from_roman(s) == n

import pytest

from paths import count_paths


def test_small():
    assert count_paths(2, 2) == 6


@pytest.mark.timeout(2)
def test_large_grid_is_fast():
    assert count_paths(16, 16) == 601080390

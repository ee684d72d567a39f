from sizing import position_size


def test_whole_shares():
    size = position_size(95_000, 100)
    assert isinstance(size, int)


def test_never_more_than_the_capital_allows():
    assert position_size(1000, 10) * 10 <= 1000

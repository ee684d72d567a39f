from portfolio.report import summary


def candles(*closes):
    return [{"close": c} for c in closes]


def test_summary_long_history():
    positions = {"AAA": candles(*range(100, 140)), "BBB": candles(*range(140, 100, -1))}
    assert summary(positions) == {"AAA": 0.0, "BBB": 0.2231}


def test_summary_short_history():
    assert summary({"CCC": candles(10, 12, 9)}) == {"CCC": 0.25}

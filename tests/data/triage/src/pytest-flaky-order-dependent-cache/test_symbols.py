from symbols import cached_symbols, refresh


def test_cached_symbols_are_sorted():
    symbols = cached_symbols()
    assert symbols == sorted(symbols)


def test_refresh_writes_cache():
    refresh(["MSFT", "AAPL"])
    assert cached_symbols() == ["AAPL", "MSFT"]

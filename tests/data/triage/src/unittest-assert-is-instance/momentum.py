def momentum(prices, lookback):
    """prices[i] - prices[i - lookback], None for the first `lookback` entries."""
    if lookback < 1:
        raise ValueError("lookback must be at least 1")
    return tuple(None if i < lookback else prices[i] - prices[i - lookback] for i in range(len(prices)))

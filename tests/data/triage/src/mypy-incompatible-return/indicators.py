def sma(prices: list[float], window: int) -> float:
    """Average of the last `window` prices; None when there are too few."""
    if len(prices) < window:
        return None
    return sum(prices[-window:]) / window


def crossed_above(fast: list[float], slow: list[float]) -> bool:
    return fast[-2] <= slow[-2] and fast[-1] > slow[-1]

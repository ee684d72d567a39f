"""Indicators over a list of prices."""


def sma(prices, window):
    """Simple moving average: the mean of each full window, None while it fills."""
    if window < 1:
        raise ValueError("window must be at least 1")
    out = []
    total = 0.0
    for i, price in enumerate(prices):
        total += price
        if i >= window:
            total -= prices[i - window]
        out.append(total / window if i + 1 >= window else None)
    return out

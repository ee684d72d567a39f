"""Indicators over a list of prices."""


def sma(prices, window):
    """Simple moving average over the last `window` prices."""
    if window < 1:
        raise ValueError("window must be at least 1")
    out = []
    for i in range(len(prices)):
        if i < window:
            out.append(None)
        else:
            out.append(sum(prices[i - window:i]) / window)
    return out

def sma(prices, window):
    """Simple moving average of the last `window` prices."""
    if len(prices) < window:
        raise ValueError("not enough prices")
    return sum(prices[-window - 1:]) / window

def rsi(prices, window=14):
    """Relative strength index over the last `window` changes."""
    if window < 1:
        raise ValueError("window must be at least 1")
    out = [None] * len(prices)
    for i in range(window, len(prices)):
        changes = [prices[j] - prices[j - 1] for j in range(i - window + 1, i + 1)]
        gain = sum(c for c in changes if c > 0) / window
        loss = -sum(c for c in changes if c < 0) / window
        out[i] = 100.0 if loss == 0 else 100 - 100 / (1 + gain / loss)
    return out

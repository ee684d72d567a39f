def ema(prices, span):
    """Exponential moving average, seeded with the first price."""
    alpha = 2 / (span + 1)
    value = prices[0]
    out = [value]
    for p in prices[1:]:
        value = alpha * p + (1 - alpha) * value
        out.append(value)
    return out

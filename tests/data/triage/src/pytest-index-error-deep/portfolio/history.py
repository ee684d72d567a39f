def window(series, end, size):
    start = end - size
    return series[start:end] if start >= 0 else []


def last_close(candles):
    return candles[-1]["close"]

from portfolio.history import last_close, window


def drawdown(candles, size):
    recent = window(candles, len(candles), size)
    last = last_close(recent)
    peak = max(c["close"] for c in recent)
    return (peak - last) / peak

def rsi(closes: list[float], period: int = 14) -> float:
    changes = [b - a for a, b in zip(closes, closes[1:])][-period:]
    gain = sum(c for c in changes if c > 0) / period
    loss = -sum(c for c in changes if c < 0) / period
    return 100.0 if loss == 0 else 100 - 100 / (1 + gain / loss)

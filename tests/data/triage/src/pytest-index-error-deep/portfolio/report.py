from portfolio.metrics import drawdown


def summary(positions, lookback=30):
    return {sym: round(drawdown(candles, lookback), 4) for sym, candles in positions.items()}

"""The SMA crossover signal."""
from strategy.indicators import sma


def crossover_signals(prices, fast, slow):
    """+1 where the fast SMA crosses above the slow one, -1 where it crosses below, else 0."""
    fast_line = sma(prices, fast)
    slow_line = sma(prices, slow)
    signals = [0] * len(prices)
    for i in range(1, len(prices)):
        window = (fast_line[i - 1], slow_line[i - 1], fast_line[i], slow_line[i])
        if None in window:
            continue
        before, after = window[0] - window[1], window[2] - window[3]
        if before <= 0 < after:
            signals[i] = 1
        elif before >= 0 > after:
            signals[i] = -1
    return signals


class SmaCrossoverStrategy:
    """A long/flat strategy on two simple moving averages."""

    def __init__(self, fast, slow):
        if fast >= slow:
            raise ValueError("the fast window must be shorter than the slow one")
        self.fast = fast
        self.slow = slow

    def generate_signals(self, prices):
        return crossover_signals(prices, self.fast, self.slow)

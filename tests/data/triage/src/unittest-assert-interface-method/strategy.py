class MomentumStrategy:
    def __init__(self, lookback=10):
        self.lookback = lookback
        self.seen = []

    def generate_signals(self, prices):
        out = []
        for i, p in enumerate(prices):
            if i < self.lookback:
                out.append(0)
            else:
                change = p - prices[i - self.lookback]
                out.append((change > 0) - (change < 0))
        return out

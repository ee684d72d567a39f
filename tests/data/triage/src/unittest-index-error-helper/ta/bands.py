from ta.stats import rolling_std
from ta.windows import windows


def bollinger(closes, size=20, k=2.0):
    """Upper and lower Bollinger bands for each full window."""
    means = [sum(w) / size for w in windows(closes, size)]
    stds = rolling_std(closes, size)
    return [(m + k * s, m - k * s) for m, s in zip(means, stds)]

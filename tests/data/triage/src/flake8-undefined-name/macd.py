from indicators import ema


def macd(closes, fast=12, slow=26, signal=9):
    line = [f - s for f, s in zip(ema(closes, fast), ema(closes, slow))]
    sig = ema(line, signal)
    return line, sig, [l - s for l, s in zip(line, signl)]

from ticker.feed import parse


def vwap(ticks, volumes):
    total=sum(p * v for p, v in zip(ticks, volumes))
    return total / sum(volumes)

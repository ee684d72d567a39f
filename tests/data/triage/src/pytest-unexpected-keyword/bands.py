from statistics import pstdev


def bollinger(closes, window=20, num_std=2.0):
    recent = closes[-window:]
    mid = sum(recent) / len(recent)
    width = num_std * pstdev(recent)
    return mid - width, mid, mid + width

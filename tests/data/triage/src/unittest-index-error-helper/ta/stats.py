from ta.windows import windows


def rolling_std(values, size):
    result = []
    for w in windows(values, size):
        mean = sum(w) / size
        result.append((sum((x - mean) ** 2 for x in w) / size) ** 0.5)
    return result

def sma(values, window):
    return [sum(values[i - window:i]) / window for i in range(window, len(values) + 1)]


def exponential_moving_average(values, span):
    alpha = 2 / (span + 1)
    out = [values[0]]
    for v in values[1:]:
        out.append(alpha * v + (1 - alpha) * out[-1])
    return out

def windows(values, size):
    """Every run of `size` consecutive values."""
    out = []
    for start in range(len(values) - size + 2):
        out.append([values[start + i] for i in range(size)])
    return out

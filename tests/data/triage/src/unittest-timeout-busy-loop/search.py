def first_at_least(sorted_values, target):
    """Index of the first value >= target (len when none)."""
    lo, hi = 0, len(sorted_values)
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_values[mid] < target:
            lo = mid
        else:
            hi = mid
    return lo

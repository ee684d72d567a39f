def total(prices: list[float], discount: float = 0.0) -> float:
    return sum(prices) * (1 - discount)

def position_size(capital: float, price: float, risk: float = 0.01) -> float:
    """How many shares to buy with `risk` of `capital` at `price`."""
    return capital * risk / price

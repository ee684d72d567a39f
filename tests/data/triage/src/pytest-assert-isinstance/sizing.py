def position_size(capital, price, risk=0.01):
    """How many shares `risk` of `capital` buys at `price`."""
    return capital * risk / price

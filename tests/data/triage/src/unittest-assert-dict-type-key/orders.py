def make_order(side, cash, price):
    """A limit order for as many shares as `cash` buys at `price`, rounded to the nearest share."""
    return {"type": "limit", "side": side, "qty": int(cash / price), "price": price}

from dataclasses import dataclass


@dataclass
class Order:
    symbol: str
    side: str
    qty: int
    limit: float


def notional(order):
    return order.qty * order.limit

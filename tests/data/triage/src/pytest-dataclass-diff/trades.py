from dataclasses import dataclass


@dataclass
class Fill:
    symbol: str
    qty: int
    price: float
    fee: float = 0.0


def parse_fill(line):
    symbol, qty, price, fee = line.split(",")
    return Fill(symbol, int(qty), float(price), float(price))

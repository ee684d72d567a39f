class Portfolio:
    def __init__(self):
        self.positions = {}

    def add(self, symbol, qty, price):
        self.positions[symbol] = (qty, price)

    def value(self):
        return sum(q * p for q, p in self.positions.values())

class OrderBook:
    def __init__(self):
        self.bids = {}
        self.asks = {}

    def add(self, side, price, qty):
        book = self.bids if side == "buy" else self.asks
        book[price] = book.get(price, 0) + qty

    def top_of_book(self):
        return (max(self.bids) if self.bids else None, min(self.asks) if self.asks else None)

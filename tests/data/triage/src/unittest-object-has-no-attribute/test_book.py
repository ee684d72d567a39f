import unittest

from book import OrderBook


class OrderBookTest(unittest.TestCase):
    def setUp(self):
        self.book = OrderBook()
        self.book.add("buy", 99.5, 10)
        self.book.add("buy", 99.0, 5)
        self.book.add("sell", 100.5, 7)

    def test_best_bid(self):
        self.assertEqual(self.book.best_bid(), 99.5)

    def test_best_ask(self):
        self.assertEqual(self.book.best_ask(), 100.5)

    def test_spread(self):
        self.assertEqual(self.book.spread(), 1.0)

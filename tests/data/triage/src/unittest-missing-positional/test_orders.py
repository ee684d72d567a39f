import unittest

from orders import Order, notional


class OrderTest(unittest.TestCase):
    def test_market_order_has_no_limit(self):
        order = Order("AAPL", "buy", 10)
        self.assertIsNone(order.limit)

    def test_notional(self):
        self.assertEqual(notional(Order("AAPL", "buy", 10, 2.5)), 25.0)

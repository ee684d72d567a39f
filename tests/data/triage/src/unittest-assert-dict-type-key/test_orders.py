import unittest

from orders import make_order


class OrderTest(unittest.TestCase):
    def test_rounds_to_the_nearest_share(self):
        self.assertEqual(make_order("buy", 990, 200), {"type": "limit", "side": "buy", "qty": 5, "price": 200})

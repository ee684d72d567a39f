import unittest
from portfolio import Portfolio

class PortfolioTest(unittest.TestCase):
    def test_total(self):
        p = Portfolio()
        p.add("AAPL", 2, 100.0)
        self.assertEqual(p.total_value(), 200.0)

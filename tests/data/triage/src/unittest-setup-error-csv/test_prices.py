import unittest

from prices import load_closes, returns


class PricesTest(unittest.TestCase):
    def setUp(self):
        self.closes = load_closes("fixtures/prices.csv")

    def test_count(self):
        self.assertEqual(len(self.closes), 3)

    def test_returns(self):
        self.assertAlmostEqual(returns(self.closes)[0], 0.0073892, places=6)

import unittest

from volatility import annualised_volatility


class VolatilityTest(unittest.TestCase):
    def test_flat_prices_have_no_volatility(self):
        self.assertEqual(annualised_volatility([100, 100, 100]), 0.0)

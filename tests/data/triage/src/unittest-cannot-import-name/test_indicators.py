import unittest

from indicators import ema, sma


class IndicatorTest(unittest.TestCase):
    def test_sma(self):
        self.assertEqual(sma([1, 2, 3, 4], 2), [1.5, 2.5, 3.5])

    def test_ema_first_value_is_seed(self):
        self.assertEqual(ema([10, 11, 12], 3)[0], 10)

import unittest

from ema import ema


class EmaTest(unittest.TestCase):
    def test_constant_series(self):
        self.assertEqual(ema([5.0, 5.0, 5.0], period=2), [5.0, 5.0, 5.0])

    def test_period_one_is_identity(self):
        self.assertEqual(ema([1.0, 2.0, 3.0], period=1), [1.0, 2.0, 3.0])

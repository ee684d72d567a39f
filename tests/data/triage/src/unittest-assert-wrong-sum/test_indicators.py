import unittest

from indicators import sma


class SmaTest(unittest.TestCase):
    def test_last_three(self):
        self.assertEqual(sma([1, 2, 3, 4, 5], 3), 4.0)

    def test_whole_series(self):
        self.assertEqual(sma([2, 4, 6], 3), 4.0)

    def test_too_short(self):
        with self.assertRaises(ValueError):
            sma([1], 3)

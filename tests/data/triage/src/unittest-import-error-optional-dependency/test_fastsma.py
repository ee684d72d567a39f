import unittest

from fastsma import sma


class SmaTest(unittest.TestCase):
    def test_window_of_two(self):
        self.assertEqual(sma([1, 3, 5], 2), [2.0, 4.0])

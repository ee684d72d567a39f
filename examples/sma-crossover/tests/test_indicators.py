import unittest

from strategy.indicators import sma


class SmaTest(unittest.TestCase):
    def test_averages_each_full_window(self):
        self.assertEqual(sma([1, 2, 3, 4, 5], 3), [None, None, 2.0, 3.0, 4.0])

    def test_window_of_one_is_the_series(self):
        self.assertEqual(sma([4, 5, 6], 1), [4.0, 5.0, 6.0])

    def test_series_shorter_than_the_window(self):
        self.assertEqual(sma([1, 2], 3), [None, None])

    def test_empty_series(self):
        self.assertEqual(sma([], 2), [])

    def test_rejects_windows_below_one(self):
        with self.assertRaises(ValueError):
            sma([1, 2, 3], 0)


if __name__ == "__main__":
    unittest.main()

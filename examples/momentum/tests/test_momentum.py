import unittest

from strategy.momentum import momentum


class MomentumTest(unittest.TestCase):
    def test_difference_over_the_lookback(self):
        self.assertEqual(momentum([1, 2, 4, 7], 1), [None, 1, 2, 3])
        self.assertEqual(momentum([1, 2, 4, 7], 2), [None, None, 3, 5])

    def test_rejects_lookbacks_below_one(self):
        with self.assertRaises(ValueError):
            momentum([1, 2], 0)


if __name__ == "__main__":
    unittest.main()

import unittest

from strategy.rsi import rsi


class RsiTest(unittest.TestCase):
    def test_known_value(self):
        # Changes +2, -1, +2: average gain 4/3, average loss 1/3, RS 4, RSI 80.
        self.assertEqual(rsi([10, 12, 11, 13], 3), [None, None, None, 80.0])

    def test_balanced_changes_give_fifty(self):
        self.assertEqual(rsi([10, 11, 10, 11, 10], 2), [None, None, 50.0, 50.0, 50.0])

    def test_no_losses_give_one_hundred(self):
        self.assertEqual(rsi([1, 2, 3, 4, 5], 2)[2:], [100.0, 100.0, 100.0])

    def test_rejects_periods_below_one(self):
        with self.assertRaises(ValueError):
            rsi([1, 2, 3], 0)


if __name__ == "__main__":
    unittest.main()

import unittest

from strategy.sma_crossover import SmaCrossoverStrategy


class EdgeCaseTest(unittest.TestCase):
    def test_flat_prices_give_no_signal(self):
        self.assertEqual(SmaCrossoverStrategy(2, 3).generate_signals([5] * 10), [0] * 10)

    def test_a_single_crossing_gives_one_buy(self):
        signals = SmaCrossoverStrategy(2, 3).generate_signals([5, 5, 5, 5, 6, 7, 8, 9])
        self.assertEqual(signals.count(1), 1)
        self.assertEqual(signals.count(-1), 0)

    def test_fast_must_be_shorter_than_slow(self):
        with self.assertRaises(ValueError):
            SmaCrossoverStrategy(3, 3)


if __name__ == "__main__":
    unittest.main()

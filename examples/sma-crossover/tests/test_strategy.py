import unittest

from strategy.sma_crossover import SmaCrossoverStrategy, crossover_signals

# Fast SMA(2) crosses above SMA(4) at index 4 and 15, below at index 9.
PRICES = [10, 10, 10, 10, 11, 12, 13, 14, 13, 12, 11, 10, 9, 9, 10, 11, 12]
EXPECTED = [0, 0, 0, 0, 1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 1, 0]


class CrossoverTest(unittest.TestCase):
    def test_signals_on_a_small_price_series(self):
        self.assertEqual(crossover_signals(PRICES, 2, 4), EXPECTED)

    def test_one_signal_per_price(self):
        self.assertEqual(len(crossover_signals(PRICES, 3, 5)), len(PRICES))

    def test_no_signal_while_averages_fill(self):
        self.assertEqual(crossover_signals([5, 6, 7], 2, 4), [0, 0, 0])

    def test_strategy_matches_the_function(self):
        strategy = SmaCrossoverStrategy(fast=2, slow=4)
        self.assertEqual(strategy.generate_signals(PRICES), EXPECTED)


if __name__ == "__main__":
    unittest.main()

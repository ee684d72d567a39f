import unittest

from strategy.momentum_strategy import MomentumStrategy

PRICES = [10, 11, 12, 11, 12, 13, 12, 11, 10, 11, 10, 9, 10]
# RSI(3) is 66.7 through index 6, then 33.3, 0, 33.3...; momentum(2) is +2 at 5, -2 at 7, 8, 11.
EXPECTED = [0, 0, 0, 0, 0, 1, 0, -1, 0, 0, 0, -1, 0]


class MomentumStrategyTest(unittest.TestCase):
    def test_signals_on_a_small_series(self):
        strategy = MomentumStrategy(rsi_period=3, lookback=2)
        self.assertEqual(strategy.generate_signals(PRICES), EXPECTED)

    def test_no_signal_before_the_indicators_fill(self):
        strategy = MomentumStrategy(rsi_period=5, lookback=5)
        self.assertEqual(strategy.generate_signals([1, 2, 3]), [0, 0, 0])


if __name__ == "__main__":
    unittest.main()

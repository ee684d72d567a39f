import unittest

from strategy import MomentumStrategy

INTERFACE = ("generate_signals", "reset")


class InterfaceTest(unittest.TestCase):
    def test_implements_the_strategy_interface(self):
        for name in INTERFACE:
            self.assertTrue(
                callable(getattr(MomentumStrategy, name, None)),
                f"MomentumStrategy does not implement the Strategy interface: no {name}()",
            )

    def test_signals(self):
        self.assertEqual(MomentumStrategy(lookback=1).generate_signals([1, 2, 1]), [0, 1, -1])

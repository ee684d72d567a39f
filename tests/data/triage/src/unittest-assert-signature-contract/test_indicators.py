import inspect
import unittest

from indicators import rsi

# The contract: def rsi(prices: list[float], period: int = 14) -> list[float | None]
CONTRACT_PARAMETERS = ["prices", "period"]


class RsiContractTest(unittest.TestCase):
    def test_signature_matches_the_contract(self):
        names = list(inspect.signature(rsi).parameters)
        self.assertEqual(names, CONTRACT_PARAMETERS, "rsi's signature does not match the contract")

    def test_known_value(self):
        self.assertEqual(rsi([10, 12, 11, 13], 3), [None, None, None, 80.0])

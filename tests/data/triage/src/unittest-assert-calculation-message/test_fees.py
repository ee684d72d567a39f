import unittest

from fees import net_proceeds


class FeeTest(unittest.TestCase):
    def test_one_fee_per_trade(self):
        self.assertAlmostEqual(net_proceeds(10, 100.0), 999.0, places=6, msg="fee calculation is off")

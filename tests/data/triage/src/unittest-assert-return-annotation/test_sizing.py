import typing
import unittest

from sizing import position_size


class SizingTest(unittest.TestCase):
    def test_return_type_is_whole_shares(self):
        hints = typing.get_type_hints(position_size)
        self.assertEqual(hints["return"], int, "position_size must return int (whole shares), the contract's return type")

    def test_small_account(self):
        self.assertEqual(position_size(1000, 10), 1)

import unittest

from momentum import momentum


class MomentumTest(unittest.TestCase):
    def test_returns_a_list(self):
        self.assertIsInstance(momentum([1, 2, 4, 7], 1), list)

    def test_values(self):
        self.assertEqual(list(momentum([1, 2, 4, 7], 2)), [None, None, 3, 5])

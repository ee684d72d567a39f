import unittest

from cart import Cart


class CartTest(unittest.TestCase):
    def test_add_accumulates(self):
        cart = Cart()
        cart.add("apple")
        cart.add("apple", 2)
        self.assertEqual(cart.items, {"apple": 3})

    def test_total(self):
        cart = Cart()
        cart.add("apple", 2)
        cart.add("pear")
        self.assertEqual(cart.total({"apple": 0.5, "pear": 1.25}), 2.25)

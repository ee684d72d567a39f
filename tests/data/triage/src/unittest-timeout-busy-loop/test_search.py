import unittest

from search import first_at_least


class FirstAtLeastTest(unittest.TestCase):
    def test_found(self):
        self.assertEqual(first_at_least([1, 3, 5, 7], 5), 2)

    def test_past_the_end(self):
        self.assertEqual(first_at_least([1, 3, 5, 7], 9), 4)

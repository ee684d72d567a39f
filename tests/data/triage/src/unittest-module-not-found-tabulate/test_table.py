import unittest
from table import render


class TableTest(unittest.TestCase):
    def test_has_header(self):
        self.assertIn("name", render([["apple", 3]]))

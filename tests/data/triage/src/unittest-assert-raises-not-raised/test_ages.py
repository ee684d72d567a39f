import unittest
from ages import parse_age

class AgeTest(unittest.TestCase):
    def test_valid(self):
        self.assertEqual(parse_age("42"), 42)

    def test_negative_is_rejected(self):
        with self.assertRaises(ValueError):
            parse_age("-3")

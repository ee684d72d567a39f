import unittest

from prices import load_prices


class LoadTest(unittest.TestCase):
    def test_skips_the_header(self):
        self.assertEqual(load_prices("date,close\n2024-01-02,10.5\n2024-01-03,11\n"), [10.5, 11.0])

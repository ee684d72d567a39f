import unittest

from ta import bollinger


class BollingerTest(unittest.TestCase):
    def test_flat_series_has_no_width(self):
        bands = bollinger([10.0] * 5, size=3)
        self.assertEqual(bands, [(10.0, 10.0)] * 3)

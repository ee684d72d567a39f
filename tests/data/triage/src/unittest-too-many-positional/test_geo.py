import unittest

from geo import haversine


class HaversineTest(unittest.TestCase):
    def test_zero(self):
        self.assertEqual(haversine((1.0, 2.0), (1.0, 2.0)), 0.0)

    def test_miles(self):
        self.assertAlmostEqual(haversine((51.5, -0.12), (48.85, 2.35), "mi"), 213.9, places=0)

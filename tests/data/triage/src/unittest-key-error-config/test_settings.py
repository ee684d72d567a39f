import unittest
from settings import load_settings

class SettingsTest(unittest.TestCase):
    def test_defaults(self):
        self.assertEqual(load_settings({}), "127.0.0.1:8080")

if __name__ == "__main__":
    unittest.main()

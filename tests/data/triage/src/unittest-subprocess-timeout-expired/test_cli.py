import subprocess
import sys
import unittest


class CliTest(unittest.TestCase):
    def test_starts_watching(self):
        out = subprocess.run([sys.executable, "cli.py"], capture_output=True, text=True, timeout=2)
        self.assertEqual(out.stdout, "watching SPY\n")

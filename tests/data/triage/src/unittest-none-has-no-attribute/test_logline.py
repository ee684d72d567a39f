import unittest

from logline import Entry, parse_log


class ParseLogTest(unittest.TestCase):
    def test_one_line(self):
        entries = parse_log("2024-05-01 12:00:00 INFO started")
        self.assertEqual(entries, [Entry("2024-05-01 12:00:00", "INFO", "started")])

    def test_skips_blank_and_continuation_lines(self):
        text = "2024-05-01 12:00:00 ERROR boom\n  at main.py:3\n\n2024-05-01 12:00:01 INFO retry"
        self.assertEqual([e.level for e in parse_log(text)], ["ERROR", "INFO"])

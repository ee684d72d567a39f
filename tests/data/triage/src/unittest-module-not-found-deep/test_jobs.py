import unittest
from datetime import datetime

from scheduler import Job, next_runs


class NextRunsTest(unittest.TestCase):
    def test_daily(self):
        job = Job("backup", "FREQ=DAILY;COUNT=5")
        runs = next_runs(job, datetime(2024, 1, 1, 3, 0), 2)
        self.assertEqual(runs, [datetime(2024, 1, 1, 3, 0), datetime(2024, 1, 2, 3, 0)])

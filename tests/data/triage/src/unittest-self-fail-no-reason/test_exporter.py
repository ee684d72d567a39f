import unittest

from exporter import export_report


class ExportTest(unittest.TestCase):
    def test_export(self):
        if not export_report([{"id": 1}, {"name": "x"}], "report.json"):
            self.fail("no")

import unittest

from invoice import invoice_total


class InvoiceTest(unittest.TestCase):
    def test_total(self):
        self.assertEqual(invoice_total(["2 x 3.50", "1 x 10"]), 17.0)

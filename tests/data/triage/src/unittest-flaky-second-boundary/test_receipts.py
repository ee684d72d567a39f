import unittest

from receipts import make_receipt


class ReceiptTest(unittest.TestCase):
    def test_id_carries_issue_time(self):
        receipt = make_receipt("A17")
        self.assertEqual(receipt["id"], f"A17-{receipt['issued_at']}")

import unittest

from account import Account


class AccountTest(unittest.TestCase):
    def test_withdraw(self):
        acct = Account(100)
        acct.withdraw(30)
        self.assertEqual(acct.balance(), 70)

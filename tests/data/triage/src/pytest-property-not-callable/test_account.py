from account import Account


def test_balance_after_deposits():
    acct = Account("ann")
    acct.deposit(10)
    acct.deposit(5)
    assert acct.balance() == 15

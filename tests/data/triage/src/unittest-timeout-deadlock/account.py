import threading


class Account:
    def __init__(self, balance=0):
        self._balance = balance
        self._lock = threading.Lock()

    def balance(self):
        with self._lock:
            return self._balance

    def withdraw(self, amount):
        with self._lock:
            if amount > self.balance():
                raise ValueError("insufficient funds")
            self._balance -= amount

class Account:
    def __init__(self, owner):
        self.owner = owner
        self._entries = []

    def deposit(self, amount):
        self._entries.append(amount)

    @property
    def balance(self):
        return sum(self._entries)

from dataclasses import dataclass


@dataclass
class Entry:
    account: str
    amount: float


def balances(entries: list[Entry]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for e in entries:
        totals[e.account] = totals.get(e.account, 0) + e.amount
    return totals


def largest(entries: list[Entry]) -> str:
    best = None
    best_amount: int = 0
    for e in entries:
        if e.amount > best_amount:
            best_amount = e.amount
            best = e.account
    return best or ""

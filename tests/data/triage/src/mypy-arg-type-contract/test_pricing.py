from decimal import Decimal

from pricing import total


def test_total_with_decimals() -> None:
    assert total([Decimal("9.99"), Decimal("0.01")], discount=Decimal("0.5")) == Decimal("5.00")

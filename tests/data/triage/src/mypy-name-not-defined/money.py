def add(a: Decimal, b: Decimal) -> Decimal:
    return a + b

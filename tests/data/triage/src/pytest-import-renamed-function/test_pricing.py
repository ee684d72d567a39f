from pricing import apply_discount

def test_ten_percent():
    assert apply_discount(200.0, 10) == 180.0

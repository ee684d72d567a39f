COUPONS = {"SAVE10": 0.10, "HALF": 0.5}


def total(prices):
    return sum(prices)


def apply_coupon(amount, code):
    return round(amount * (1 - COUPONS.get(code, 0)) - (1 if code in COUPONS else 0), 2)

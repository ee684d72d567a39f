def validate(order):
    errors = []
    side = order.get("side")
    if order.get("qty") == None:
        errors.append("qty missing")
    if order.get("price") != None and order["price"] <= 0:
        errors.append("price must be positive")
    try:
        int(order.get("qty", 0))
    except ValueError as exc:
        errors.append("qty not a number")
    return errors

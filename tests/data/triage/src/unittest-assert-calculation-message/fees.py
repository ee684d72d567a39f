def net_proceeds(qty, price, fee_rate=0.001):
    notional = qty * price
    fee = notional * fee_rate
    return notional - 2 * fee

def line_total(line):
    qty, price = line.split("x")
    return qty.strip() * float(price)


def invoice_total(lines):
    return round(sum(line_total(l) for l in lines), 2)

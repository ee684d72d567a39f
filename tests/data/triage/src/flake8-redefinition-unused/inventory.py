def restock(item):
    return item


def restock(item, qty=1):
    if item == None:
        return None
    return (item, qty)

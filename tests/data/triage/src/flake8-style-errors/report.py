import json
def render(rows):
    lines = []
    for row in rows:
        lines.append("{symbol:<8}{qty:>6}{price:>12.2f}{value:>14.2f}".format(symbol=row["symbol"], qty=row["qty"], price=row["price"], value=row["qty"] * row["price"]))
    return "\n".join(lines)
def to_json(rows):
    return json.dumps(rows,indent=2)

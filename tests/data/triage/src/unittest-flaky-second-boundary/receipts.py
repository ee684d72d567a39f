import time


def _render(order_id):
    time.sleep(0.4)  # stands in for rendering the PDF
    return f"receipt-{order_id}.pdf"


def make_receipt(order_id):
    stamp = int(time.time())
    path = _render(order_id)
    return {"id": f"{order_id}-{stamp}", "file": path, "issued_at": int(time.time())}

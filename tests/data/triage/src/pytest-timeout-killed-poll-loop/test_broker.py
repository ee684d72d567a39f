from broker import Order, wait_for_fill


def test_fills_after_three_polls():
    answers = iter(["NEW", "PARTIAL", "FILLED"])
    last = {"v": "FILLED"}

    def poll(order_id):
        last["v"] = next(answers, last["v"])
        return last["v"]

    assert wait_for_fill(Order("o-1"), poll) == 3

from dataclasses import dataclass


@dataclass
class Order:
    id: str
    status: str = "new"


def wait_for_fill(order, poll):
    """Polls the broker until the order is filled; returns the number of polls."""
    polls = 0
    while order.status != "filled":
        order.status = poll(order.id)
        polls += 1
    return polls

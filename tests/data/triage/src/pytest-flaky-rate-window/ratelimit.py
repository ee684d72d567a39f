import time


class RateLimiter:
    """At most `limit` calls in each wall-clock second."""

    def __init__(self, limit):
        self.limit = limit
        self.window = None
        self.count = 0

    def allow(self):
        now = int(time.time())
        if now != self.window:
            self.window, self.count = now, 0
        self.count += 1
        return self.count <= self.limit

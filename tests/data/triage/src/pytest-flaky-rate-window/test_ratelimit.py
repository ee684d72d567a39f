import time

from ratelimit import RateLimiter


def test_fourth_call_in_a_second_is_refused():
    limiter = RateLimiter(3)
    results = []
    for _ in range(4):
        results.append(limiter.allow())
        time.sleep(0.17)
    assert results == [True, True, True, False]

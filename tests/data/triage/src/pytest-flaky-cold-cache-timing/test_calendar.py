import time

from calendar_data import holidays


def test_holidays_load_quickly():
    start = time.perf_counter()
    days = holidays()
    elapsed = time.perf_counter() - start
    assert "2024-12-25" in days
    assert elapsed < 0.5, f"loading holidays took {elapsed:.2f}s"

from datetime import datetime

from etl.pipeline import run


def test_run_counts_ticks():
    ticks = [{"ts": datetime(2024, 1, 1, 10), "price": 1.0}, {"ts": datetime(2024, 1, 1, 11), "price": 2.0}]
    assert run(ticks)["count"] == 2

import os
from visits import visit, PATH

def test_returning_visitor():
    seen_before = os.path.exists(PATH)
    n = visit()
    assert seen_before, f"no record of an earlier visit (count {n})"

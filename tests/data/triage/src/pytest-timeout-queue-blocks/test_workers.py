from workers import parallel_map


def test_squares():
    assert parallel_map(lambda x: x * x, [1, 2, 3]) == [1, 4, 9]


def test_bad_item_is_reported():
    assert parallel_map(lambda x: 10 // x, [1, 0, 5]) == [10, None, 2]

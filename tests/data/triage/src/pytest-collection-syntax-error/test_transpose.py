def test_list_transpose():
    assert [list(c) for c in zip(*[[1, 2], [3, 4]])] == [[1, 3], [2, 4]]

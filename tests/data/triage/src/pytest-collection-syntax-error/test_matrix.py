from matrix import identity, matmul


def test_identity():
    assert identity(2) == [[1, 0], [0, 1]]


def test_matmul():
    assert matmul([[1, 2], [3, 4]], identity(2)) == [[1, 2], [3, 4]]

from signals import crossover


def test_single_cross():
    assert crossover([1, 2, 3, 4], [2, 2, 2, 2]) == [2]

from words import count_words

def test_three_words():
    assert count_words("one two three") == 3

from tokens import tokenize

def test_lowercase_tokens():
    assert tokenize("Hello World", lower=True) == ["hello", "world"]

import textkit


def test_wrap():
    assert textkit.wrap("the quick brown fox", 10) == ["the quick", "brown fox"]


def test_dedent():
    assert textkit.dedent("  a\n  b") == "a\nb"

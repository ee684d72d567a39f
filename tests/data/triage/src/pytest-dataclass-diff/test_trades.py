from trades import Fill, parse_fill


def test_parse_fill():
    assert parse_fill("MSFT,10,412.5,1.25") == Fill("MSFT", 10, 412.5, 1.25)

from names import normalize

def test_full_name():
    assert normalize(" ada lovelace ") == "lovelace, ada"

def test_single_name():
    assert normalize("plato").title() == "Plato"

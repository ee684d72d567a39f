import pytest

from validate import validate_email


def test_lowercases():
    assert validate_email("Ann@Example.org") == "ann@example.org"


@pytest.mark.parametrize("bad", ["no-at-sign", "two@@signs.org", "trailing@dot.", "a@b c.org"])
def test_rejects(bad):
    with pytest.raises(ValueError):
        validate_email(bad)

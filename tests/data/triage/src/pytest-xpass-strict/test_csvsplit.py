import pytest

from csvsplit import split_row


def test_plain():
    assert split_row("a,b,c") == ["a", "b", "c"]


@pytest.mark.xfail(strict=True, reason="quoted commas not supported yet")
def test_quoted_comma():
    assert split_row('a,"b,c"') == ["a", "b,c"]

import pytest

from slug import slugify


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello World", "hello-world"),
        ("  spaces  around ", "spaces-around"),
        ("C++ & Rust!", "c-rust"),
        ("already-a-slug", "already-a-slug"),
        ("Ünïcödé", "unicode"),
        ("x" * 50, "x" * 40),
    ],
)
def test_slugify(text, expected):
    assert slugify(text) == expected

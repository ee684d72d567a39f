import pytest

from store import Store


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "kv.db"))


def test_roundtrip(store):
    store.put("a", "1")
    assert store.get("a") == "1"


def test_missing_is_none(store):
    assert store.get("nope") is None

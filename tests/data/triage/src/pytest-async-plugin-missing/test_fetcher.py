import pytest

from fetcher import fetch_all


@pytest.mark.asyncio
async def test_fetch_all_keeps_order():
    async def fake(url):
        return url.upper()

    assert await fetch_all(["a", "b"], fake) == ["A", "B"]

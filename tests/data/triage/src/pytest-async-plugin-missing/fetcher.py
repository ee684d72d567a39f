import asyncio


async def fetch_all(urls, fetch):
    return await asyncio.gather(*(fetch(u) for u in urls))

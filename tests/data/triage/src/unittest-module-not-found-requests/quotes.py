"""Fetches quotes from a JSON API; the HTTP session is injectable for tests."""


class QuoteClient:
    def __init__(self, base_url, session=None):
        import requests

        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()

    def last_price(self, symbol):
        resp = self.session.get(f"{self.base_url}/quote/{symbol}")
        resp.raise_for_status()
        return float(resp.json()["price"])

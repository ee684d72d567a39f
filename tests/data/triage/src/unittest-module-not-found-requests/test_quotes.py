import unittest

from quotes import QuoteClient


class FakeResponse:
    def __init__(self, payload):
        self.payload = payload

    def raise_for_status(self):
        pass

    def json(self):
        return self.payload


class FakeSession:
    def get(self, url):
        return FakeResponse({"price": "187.25"})


class QuoteClientTest(unittest.TestCase):
    def test_last_price_with_fake_session(self):
        client = QuoteClient("https://api.example/", session=FakeSession())
        self.assertEqual(client.last_price("AAPL"), 187.25)

    def test_default_session(self):
        client = QuoteClient("https://api.example/")
        self.assertIsNotNone(client.session)

import socket
import threading
import unittest

from client import fetch_quote


def serve(listener):
    conn, _ = listener.accept()
    with conn:
        symbol = conn.recv(64).strip()
        conn.sendall(b"OK " + symbol + b" 101.5\n")


class QuoteTest(unittest.TestCase):
    def test_quote(self):
        listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=serve, args=(listener,), daemon=True).start()
        self.assertIn(b"101.5", fetch_quote(listener.getsockname()[1], "SPY"))

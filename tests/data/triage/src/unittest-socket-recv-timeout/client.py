import socket


def fetch_quote(port, symbol):
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        greeting = s.recv(64)  # the server speaks only when asked
        s.sendall(symbol.encode() + b"\n")
        return greeting + s.recv(64)

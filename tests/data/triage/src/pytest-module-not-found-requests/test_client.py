import client

def test_has_status():
    assert callable(client.status)

from ready import wait_until_ready

def test_ready():
    assert wait_until_ready()

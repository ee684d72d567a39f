import time

READY = False

def wait_until_ready():
    while not READY:
        time.sleep(0.1)
    return True

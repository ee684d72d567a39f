DEFAULTS = {"host": "127.0.0.1", "listen_port": 8080}

def load_settings(overrides):
    config = {**DEFAULTS, **overrides}
    return f"{config['host']}:{config['port']}"

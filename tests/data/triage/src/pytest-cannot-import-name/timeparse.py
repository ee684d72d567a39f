import re

_PART = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text):
    return sum(int(n) * _SECONDS[u] for n, u in _PART.findall(text))

import json
from pathlib import Path

CACHE = Path(".cache/symbols.json")


def refresh(source):
    CACHE.parent.mkdir(exist_ok=True)
    CACHE.write_text(json.dumps(sorted(source)))


def cached_symbols():
    return json.loads(CACHE.read_text())

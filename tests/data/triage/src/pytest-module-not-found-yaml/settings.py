from dataclasses import dataclass
from pathlib import Path


@dataclass
class Settings:
    interval: int
    symbols: list


def load(path):
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    return Settings(interval=int(data["interval"]), symbols=list(data["symbols"]))

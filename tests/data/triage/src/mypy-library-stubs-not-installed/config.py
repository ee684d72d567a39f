from pathlib import Path
from typing import Any

import yaml


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError("top level must be a mapping")
    return data

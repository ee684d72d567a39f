import shutil
from pathlib import Path


def backup(src, dest):
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    copied = 0
    for f in Path(src).glob("*.db"):
        shutil.copy2(f, dest / f.name)
        copied += 1
    return copied > 0

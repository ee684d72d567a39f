import re

SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?")


def parse(version: str) -> tuple[int, int, int]:
    m = SEMVER.fullmatch(version)
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def bump_minor(version: str) -> str:
    major, minor, _ = parse(version)
    return f"{major}.{minor + 1}.0"


def prerelease(version: str) -> str | None:
    m = SEMVER.fullmatch(version)
    return m.group(4) if m else None

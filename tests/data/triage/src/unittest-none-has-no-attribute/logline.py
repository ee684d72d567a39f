import re
from dataclasses import dataclass

LINE = re.compile(r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?P<level>[A-Z]+) (?P<msg>.*)")


@dataclass
class Entry:
    ts: str
    level: str
    msg: str


def parse_line(line):
    m = LINE.match(line)
    return Entry(m.group("ts"), m.group("level"), m.group("msg"))


def parse_log(text):
    return [parse_line(line) for line in text.splitlines()]

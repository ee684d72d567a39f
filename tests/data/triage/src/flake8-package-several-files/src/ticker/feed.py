import re
import sys

TICK = re.compile("(\w+),(\d+\.\d+)")


def parse(line):
    m = TICK.match(line)
    return (m.group(1), float(m.group(2))) if m else None

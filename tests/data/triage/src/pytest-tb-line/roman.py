VALUES = [(1000, "M"), (500, "D"), (100, "C"), (50, "L"), (10, "X"), (5, "V"), (1, "I")]


def to_roman(n):
    out = ""
    for value, letter in VALUES:
        while n >= value:
            out += letter
            n -= value
    return out


def from_roman(s):
    total = 0
    for ch in s:
        total += dict((l, v) for v, l in VALUES)[ch]
    return total

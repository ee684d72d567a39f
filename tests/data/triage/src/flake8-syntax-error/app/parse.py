def parse_pair(text):
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"no '=' in {text!r}")
    return key.strip(), value.strip()


def parse_all(lines):
    out = {}
    for line in lines:
        if line.strip():
        key, value = parse_pair(line)
        out[key] = value
    return out

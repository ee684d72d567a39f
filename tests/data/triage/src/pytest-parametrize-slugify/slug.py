import re


def slugify(text, max_len=40):
    text = text.lower().strip()
    text = re.sub(r"[^a-z0-9]+", "-", text)
    return text[:max_len]

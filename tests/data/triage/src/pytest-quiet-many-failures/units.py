FACTORS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def parse_size(text):
    text = text.strip().lower()
    for unit in FACTORS:
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * FACTORS[unit])
    return int(text)


def human_size(n):
    for unit in ["B", "KB", "MB", "GB"]:
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"

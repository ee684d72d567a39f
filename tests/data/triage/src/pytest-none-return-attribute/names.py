def normalize(name):
    name = name.strip()
    if " " in name:
        first, last = name.split(" ", 1)
        return f"{last}, {first}"

import re


def to_snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def to_kebab(name):
    return to_snake(name).replace("_", "-")

import re

EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def validate_email(address):
    if not EMAIL.match(address):
        raise ValueError(f"invalid email: {address!r}")
    return address.lower()

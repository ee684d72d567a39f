from enum import Enum


class Kind(Enum):
    INFO = "info"
    OK = "ok"
    REDIRECT = "redirect"
    CLIENT = "client_error"
    SERVER = "server_error"


def classify(code: int) -> Kind:
    if 100 <= code < 200:
        return Kind.INFO
    if 200 <= code < 300:
        return Kind.OK
    if 300 <= code < 400:
        return Kind.REDIRECT
    if 400 <= code < 500:
        return Kind.CLIENT
    if 500 <= code < 600:
        return Kind.SERVER


def is_retryable(code: int) -> bool:
    kind = classify(code)
    if kind is Kind.SERVER:
        return True
    elif code == 429:
        return True

def tokenize(expr):
    """'12 + 3*(4-1)' -> ['12', '+', '3', '*', '(', '4', '-', '1', ')']"""
    tokens, number = [], ""
    for ch in expr:
        if ch.isdigit():
            number += ch
            continue
        if number:
            tokens.append(number)
            number = ""
        if ch in "+-*/()":
            tokens.append(ch)
      elif not ch.isspace():
            raise ValueError(f"unexpected {ch!r}")
    if number:
        tokens.append(number)
    return tokens

def parse_bool(text):
    return text.strip().lower() in {"1", "true", "yes", "on"}

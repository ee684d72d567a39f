def load_prices(text):
    """Closing prices from CSV text with a header line `date,close`."""
    return [float(line.split(",")[1]) for line in text.strip().splitlines()]

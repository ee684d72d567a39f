import csv


def load_closes(path):
    """Closing prices from a date,close CSV file, oldest first."""
    with open(path, newline="") as f:
        return [float(row[1]) for row in csv.reader(f)]


def returns(closes):
    return [(b - a) / a for a, b in zip(closes, closes[1:])]

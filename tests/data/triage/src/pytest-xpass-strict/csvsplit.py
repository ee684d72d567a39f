import csv
import io


def split_row(line):
    return next(csv.reader(io.StringIO(line)))

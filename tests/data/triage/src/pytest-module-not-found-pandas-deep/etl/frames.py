import pandas as pd


def to_frame(rows):
    return pd.DataFrame.from_records(rows)

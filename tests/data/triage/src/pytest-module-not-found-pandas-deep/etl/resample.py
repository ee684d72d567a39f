from etl.frames import to_frame


def daily_close(ticks):
    frame = to_frame(ticks).set_index("ts")
    return frame["price"].resample("1D").last().tolist()

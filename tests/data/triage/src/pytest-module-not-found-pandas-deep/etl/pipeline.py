from etl.resample import daily_close


def run(ticks):
    return {"closes": daily_close(ticks), "count": len(ticks)}

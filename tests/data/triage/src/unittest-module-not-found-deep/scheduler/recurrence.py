from dateutil.rrule import rrulestr


def expand(rule, start):
    return list(rrulestr(rule, dtstart=start))

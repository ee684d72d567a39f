from dataclasses import dataclass

from scheduler.recurrence import expand


@dataclass
class Job:
    name: str
    rule: str


def next_runs(job, start, count):
    return expand(job.rule, start)[:count]

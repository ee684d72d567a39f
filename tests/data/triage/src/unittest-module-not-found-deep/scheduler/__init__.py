from scheduler.jobs import Job, next_runs

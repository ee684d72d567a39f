def report(records):
    return [f"{r['name']}: {r['total']}" for r in (records[i] for i in range(len(records) - 1))]

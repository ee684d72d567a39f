from report import report

records = [{"name": f"r{i}", "total": i * 10} for i in range(5)]
rows = report(records)
assert len(rows) == 5, f"expected 5 rows, got {len(rows)}"
print("ok")

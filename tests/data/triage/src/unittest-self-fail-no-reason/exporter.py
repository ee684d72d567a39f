import json


def export_report(rows, path):
    try:
        with open(path, "w") as f:
            json.dump({"rows": rows, "count": len(rows)}, f)
    except OSError:
        return False
    return all("id" in r for r in rows)

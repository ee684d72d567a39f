import sys

from parser import parse_args

ok = parse_args(["--limit", "5", "--dry-run"]) == {"limit": 5, "dry_run": True}
print("smoke test:", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)

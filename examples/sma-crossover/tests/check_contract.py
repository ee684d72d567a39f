"""Acceptance check for the architect: the contract exists, is JSON, and names what the
coders are asked to build."""
import json
import sys

REQUIRED = {"sma", "crossover_signals", "SmaCrossoverStrategy"}


def main(path):
    with open(path, encoding="utf-8") as f:
        contract = json.load(f)
    if not contract.get("contract_id"):
        sys.exit(f"{path}: contract_id is missing")
    names = {i.get("name") for i in contract.get("interfaces", [])}
    missing = REQUIRED - names
    if missing:
        sys.exit(f"{path}: interfaces missing: {', '.join(sorted(missing))}")
    for interface in contract["interfaces"]:
        if interface.get("type") not in ("class", "function", "module"):
            sys.exit(f"{path}: interface {interface.get('name')}: bad type {interface.get('type')!r}")
        if not interface.get("signature"):
            sys.exit(f"{path}: interface {interface.get('name')}: no signature")
    print(f"{path}: {len(names)} interfaces, all required ones present")


if __name__ == "__main__":
    main(sys.argv[1])

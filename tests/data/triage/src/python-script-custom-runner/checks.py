"""A hand-rolled runner: each check_* function returns True when it passes."""
import sys

from pricing import apply_coupon, total


def check_total():
    return total([1.0, 2.5]) == 3.5


def check_coupon_percent():
    return apply_coupon(100.0, "SAVE10") == 90.0


def check_coupon_unknown():
    return apply_coupon(100.0, "NOPE") == 100.0


def check_coupon_case():
    return apply_coupon(100.0, "save10") == 90.0


def check_total_empty():
    return total([]) == 0.0


if __name__ == "__main__":
    checks = [(n, f) for n, f in sorted(globals().items()) if n.startswith("check_")]
    failed = sum(1 for _, f in checks if not f())
    print(f"ran {len(checks)} tests")
    if failed:
        print(f"{failed} tests failed")
        sys.exit(1)
    print("all tests passed")

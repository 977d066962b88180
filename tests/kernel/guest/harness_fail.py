"""A scenario that fails on purpose (exit status 3), for the harness' own test of failure reporting."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    print("harness_fail: failing on purpose with status 3", flush=True)
    sys.exit(3)

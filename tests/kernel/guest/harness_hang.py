"""A scenario that never ends, for the harness' own test of the time limit."""

from __future__ import annotations

import time

if __name__ == "__main__":
    print("harness_hang: sleeping forever", flush=True)
    while True:
        time.sleep(60)

"""`volumed` with its key-slot KDF runs timed, for ``bench/boot.py --guest`` (scenario ``boot_bench``).

Run as ``python -m tests.kernel.guest._timed_volumed OUT.json run ARGS...``: the same CLI as the ``volumed``
console script (``volumed.cli:main``), with ``derive_key`` wrapped where the key-slot code calls it. At exit,
OUT.json gets every KDF run as ``[start, end, salt (base64)]`` and the process' milestones, all on the
system-wide monotonic clock (``time.monotonic``), which the scenario that spawned it shares.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # the interpreter is up; nothing of volumed imported yet

import atexit  # noqa: E402 (after the first clock reading, on purpose)
import base64  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    from volumed.storage.luks2 import _keyslots as keyslots_module
    from volumed.storage.luks2 import lowlevel

    runs: list[list[Any]] = []
    lock = threading.Lock()
    original = lowlevel.derive_key
    if getattr(keyslots_module, "derive_key", None) is not original:
        raise SystemExit(
            "volumed.storage.luks2._keyslots no longer calls lowlevel.derive_key: update the bench"
        )

    def timed_derive_key(kdf: Any, passphrase: bytes, length: int) -> bytes:
        start = time.monotonic()
        try:
            key: bytes = original(kdf, passphrase, length)
            return key
        finally:
            end = time.monotonic()
            with lock:
                runs.append([start, end, base64.b64encode(bytes(kdf.salt)).decode()])

    setattr(keyslots_module, "derive_key", timed_derive_key)  # noqa: B010 (a private module's name)
    milestones = {"started": STARTED, "luks2_imported": time.monotonic()}

    def dump() -> None:
        with lock:
            out.write_text(json.dumps({**milestones, "exited": time.monotonic(), "kdf_runs": runs}))

    atexit.register(dump)
    from volumed.cli import main as cli_main

    milestones["cli_imported"] = time.monotonic()
    sys.argv = ["volumed", *sys.argv[2:]]
    cli_main()


if __name__ == "__main__":
    main()

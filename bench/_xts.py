"""Payload cipher speed as a fraction of ``openssl speed -evp aes-256-xts``, measured in the same run.

Both sides encrypt whole data units of the given size with a 512-bit key; ours goes through
:class:`volumed.storage.luks2.xts.XtsCipher` in place on a 4 MiB buffer (the FUSE backend and PayloadStream
work in batches of that order), openssl through its own EVP loop, one call per data unit.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

from volumed.storage.luks2.xts import Engine, XtsCipher

BATCH = 4 << 20


def openssl_mb_s(block_size: int, seconds: int = 1) -> float:
    """MB/s (10^6 bytes) of ``openssl speed -evp aes-256-xts -bytes N``."""
    result = subprocess.run(
        ["openssl", "speed", "-evp", "aes-256-xts", "-bytes", str(block_size), "-seconds", str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"^AES-256-XTS\s+([\d.]+)k\s*$", result.stdout, re.MULTILINE | re.IGNORECASE)
    if match is None:
        raise RuntimeError(f"cannot parse openssl speed output: {result.stdout!r}")
    return float(match.group(1)) * 1000 / 1e6


def ours_mb_s(
    sector_size: int, *, decrypt: bool = False, seconds: float = 1.0, engine: Engine = "auto"
) -> float:
    """MB/s of XtsCipher over a 4 MiB buffer of ``sector_size`` units, for about ``seconds``."""
    cipher = XtsCipher(os.urandom(64), engine=engine)
    buffer = bytearray(os.urandom(BATCH))
    run = cipher.decrypt_inplace if decrypt else cipher.encrypt_inplace
    run(buffer, iv_tweak=0, sector_size=sector_size)
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        run(buffer, iv_tweak=done // 512, sector_size=sector_size)
        done += BATCH
    return done / elapsed / 1e6


def best_of_both(sector_size: int, *, rounds: int = 3) -> tuple[float, float]:
    """(ours, openssl) MB/s, each the best of ``rounds`` interleaved runs: the machine is shared, and the best
    run of each is the one least disturbed by other work."""
    ours = openssl = 0.0
    for _ in range(rounds):
        openssl = max(openssl, openssl_mb_s(sector_size))
        ours = max(ours, ours_mb_s(sector_size, seconds=0.5))
    return ours, openssl


def fraction_of_openssl(sector_size: int, *, rounds: int = 3) -> float:
    """Our encryption speed divided by openssl's at the same data unit size, both measured now."""
    ours, openssl = best_of_both(sector_size, rounds=rounds)
    return ours / openssl

"""Reading a small file through its descriptor, never more than a limit (a FIFO or /dev/zero in its place
must not grow memory)."""

from __future__ import annotations

import os


def read_bounded(fd: int, *, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``fd``, until end of file (blocking)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)

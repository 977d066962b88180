"""The zswap parameters as they were before volumed's first write, kept in its state directory (blocking I/O).

The ZswapController writes them back when the ZswapConfig goes. Held only in memory, they were lost by a
restart without a reboot: the new run read volumed's own values as the originals and wrote nothing back. The
state directory (``/run/volumed``, a tmpfs) is cleared by a reboot, as the kernel's parameters are.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


class OriginalsError(ValueError):
    """The saved file cannot be read or does not hold parameter values; the message names the file."""


def load_originals(path: Path) -> dict[str, str] | None:
    """The saved values, or None when there is no file.

    Raises:
        OriginalsError: the file is unreadable or not a JSON object of strings.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise OriginalsError(f"cannot read {path}: {error}") from None
    try:
        values = json.loads(text)
    except ValueError:
        raise OriginalsError(f"{path} does not hold JSON") from None
    if not isinstance(values, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in values.items()
    ):
        raise OriginalsError(f"{path} does not hold parameter names and values")
    return values


def save_originals(path: Path, values: Mapping[str, str]) -> None:
    """Write the values durably (a temporary file renamed over ``path``), before the first parameter write."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(dict(values), sort_keys=True).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def remove_originals(path: Path) -> None:
    """Forget the saved values once written back (absent counts as removed)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

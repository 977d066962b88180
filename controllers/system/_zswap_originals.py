"""The zswap parameters as they were before volumed's first write, kept in its state directory (blocking I/O).

The ZswapController writes them back when the ZswapConfig goes. Held only in memory, they were lost by a
restart without a reboot: the new run read volumed's own values as the originals and wrote nothing back. The
state directory (``/run/volumed``, a tmpfs) is cleared by a reboot, as the kernel's parameters are.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from typing import TYPE_CHECKING

from ._zswap_sysfs import parameter_values

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


_NAMES = frozenset(parameter_values(0, shrinker_enabled=False))
"""The parameters volumed writes, so the only ones it saves: a name is a file name under the parameters
directory (``../`` would name a file anywhere)."""
_VALUE = re.compile(r"[!-~]{1,32}")
"""What such a parameter holds (``Y``, ``20``): short printable ASCII; sysfs takes nothing else."""


class OriginalsError(ValueError):
    """The saved file cannot be read or does not hold parameter values; the message names the file."""


def load_originals(path: Path) -> dict[str, str] | None:
    """The saved values, or None when there is no file.

    Raises:
        OriginalsError: the file is unreadable or not a JSON object of strings, or names a parameter
            volumed does not write, or holds a value that is not short printable ASCII (a damaged or forged
            file: never written to the kernel).
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
    for name, value in values.items():
        if name not in _NAMES:
            raise OriginalsError(f"{path} names {name!r}, not a zswap parameter volumed writes")
        if not _VALUE.fullmatch(value):
            raise OriginalsError(f"{path} holds {value[:40]!r} for {name}, not a short printable ASCII value")
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

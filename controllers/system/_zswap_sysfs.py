"""Zswap's kernel interface: the module parameters under sysfs and the counters under debugfs (blocking I/O).

Talos writes ``sys.module.zswap.parameters.{enabled,max_pool_percent,shrinker_enabled}`` as kernel params and
reads nine counters from ``/sys/kernel/debug/zswap``; the same files are used here, under roots that tests
point at a fake tree.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

PARAMETERS_DIR: Final = "module/zswap/parameters"
"""Under the sysfs root."""
STATUS_DIR: Final = "zswap"
"""Under the debugfs root."""
COUNTERS: Final = (
    "pool_total_size",
    "stored_pages",
    "pool_limit_hit",
    "reject_reclaim_fail",
    "reject_alloc_fail",
    "reject_kmemcache_fail",
    "reject_compress_fail",
    "reject_compress_poor",
    "written_back_pages",
)
"""The debugfs counters Talos' ZswapStatusController reads, in its order."""


class ZswapError(OSError):
    """A zswap parameter or counter could not be read, written or parsed; the message names the file."""


def parameter_values(max_pool_percent: int, shrinker_enabled: bool) -> dict[str, str]:
    """What Talos writes for a ZswapConfig, by parameter file name (in the order it writes them)."""
    return {
        "enabled": "Y",
        "max_pool_percent": str(max_pool_percent),
        "shrinker_enabled": "Y" if shrinker_enabled else "N",
    }


def read_parameters(sysfs_root: str, names: tuple[str, ...]) -> dict[str, str]:
    """The current values of the named parameters this kernel has, without the trailing newline.

    A parameter whose file is missing from a zswap that has the others is left out (``shrinker_enabled``
    came with Linux 6.8): Talos writes each parameter on its own, and one the kernel lacks stops none of the
    others.

    Raises:
        ZswapError: the parameters directory is missing (no zswap in this kernel), or a file cannot be read.
    """
    directory = os.path.join(sysfs_root, PARAMETERS_DIR)
    values: dict[str, str] = {}
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="ascii") as file:
                values[name] = file.read(4096).strip()  # a sysfs attribute is at most a page
        except FileNotFoundError as error:
            if not os.path.isdir(directory):
                raise ZswapError(f"zswap: cannot read {path}: {_reason(error)}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ZswapError(f"zswap: cannot read {path}: {_reason(error)}") from None
    return values


def parameter_path(sysfs_root: str, name: str) -> str:
    """The file of parameter ``name`` (for messages)."""
    return os.path.join(sysfs_root, PARAMETERS_DIR, name)


def write_parameters(sysfs_root: str, values: Mapping[str, str]) -> None:
    """Write each value to its parameter file, in order; a refused one does not stop the others (Talos writes
    each as its own kernel parameter).

    Raises:
        ZswapError: naming each file and value the kernel refused (or why the file could not be opened).
    """
    failures: list[str] = []
    for name, value in values.items():
        path = parameter_path(sysfs_root, name)
        try:
            # No O_CREAT: a parameter missing from the kernel is an error, never a new file in a fake tree.
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            try:
                os.write(fd, value.encode("ascii"))
            finally:
                os.close(fd)
        except OSError as error:
            failures.append(f"cannot write {value!r} to {path}: {_reason(error)}")
    if failures:
        raise ZswapError(f"zswap: {'; '.join(failures)}")


def read_counters(debugfs_root: str) -> dict[str, int] | None:
    """The zswap counters by name; None when ``pool_total_size`` cannot be read (debugfs not mounted, or no
    zswap), as Talos then publishes no status.

    Raises:
        ZswapError: ``pool_total_size`` was readable but another counter is missing or not a number.
    """
    directory = os.path.join(debugfs_root, STATUS_DIR)
    try:
        with open(os.path.join(directory, COUNTERS[0]), "rb"):
            pass
    except OSError:
        return None
    counters: dict[str, int] = {}
    for name in COUNTERS:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as file:
                text = file.read(64).strip()
        except OSError as error:
            raise ZswapError(f"zswap: cannot read {path}: {_reason(error)}") from None
        if not text.isdigit():
            raise ZswapError(f"zswap: {path} holds {text[:32]!r}, not a number")
        counters[name] = int(text)
    return counters


def ibytes(size: int) -> str:
    """``size`` as go-humanize v1.0.1's ``IBytes`` writes it (Talos' ZswapStatus ``totalSizeHuman``)."""
    if size < 10:
        return f"{size} B"
    exponent = math.floor(math.log(size) / math.log(1024))
    suffix = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")[exponent]
    value = math.floor(size / 1024**exponent * 10 + 0.5) / 10
    return f"{value:.0f} {suffix}" if value >= 10 else f"{value:.1f} {suffix}"


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno is not None:
        return os.strerror(error.errno)
    return str(error)

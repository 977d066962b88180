"""Making filesystems (xfs, ext4, swap) with a label."""

from __future__ import annotations

import enum
import os
import uuid as uuidlib
from typing import Final

from volumed.storage.blockdev import device_size

from ._errors import ToolError, UnsupportedFilesystemError
from ._run import run_tool


class FilesystemType(enum.StrEnum):
    """The filesystems volumes are formatted with (Talos' choices: xfs by default, ext4, swap)."""

    XFS = "xfs"
    EXT4 = "ext4"
    SWAP = "swap"


_LABEL_MAX: Final = {FilesystemType.XFS: 12, FilesystemType.EXT4: 16, FilesystemType.SWAP: 16}
# mkfs.xfs (>= 5.19) refuses filesystems under 300 MB unless the fstests variables are all set; small
# volumes (Talos' 100 MiB STATE, test images) need them. The resulting filesystem is a normal XFS.
_XFS_MIN_SUPPORTED: Final = 300_000_000
_XFS_SMALL_ENV: Final = {"TEST_DIR": "1", "TEST_DEV": "1", "QA_CHECK_FS": "1"}
#: Lines of a failed mkfs's stderr kept in its error (a VolumeStatus shows it).
_ERROR_LINES: Final = 2


def _without_usage(stderr: str) -> str:
    """The error lines of a failed mkfs, without the usage text mkfs.xfs prints after them (some thirty
    lines of options that landed in the VolumeStatus)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    usage = next((i for i, line in enumerate(lines) if line.startswith("Usage:")), len(lines))
    return "\n".join((lines[:usage] or lines[:1])[:_ERROR_LINES])


def _check_label(fstype: FilesystemType, label: str | None) -> None:
    if label is None:
        return
    if not label or len(label.encode()) > _LABEL_MAX[fstype] or "\0" in label:
        raise UnsupportedFilesystemError(
            f"label {label!r} is not valid for {fstype}: 1..{_LABEL_MAX[fstype]} bytes, no NUL"
        )


def _check_uuid(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parsed = uuidlib.UUID(value)
    except ValueError:
        raise UnsupportedFilesystemError(f"filesystem UUID {value!r} is not a UUID") from None
    if parsed.int == 0:
        raise UnsupportedFilesystemError("the all-zero filesystem UUID means none: pass a real one")
    return str(parsed)


def make_filesystem(
    device: str | os.PathLike[str],
    fstype: str,
    *,
    label: str | None = None,
    uuid: str | None = None,
    force: bool = True,
) -> None:
    """Format ``device`` (block device or image file) as ``fstype`` with ``label`` (blocking).

    Callers decide whether formatting is wanted (probe first: Talos formats only a device without a
    filesystem); ``force`` only stops the tools from refusing over an old signature. ``uuid`` fixes the new
    filesystem's UUID (the tools pick a random one otherwise), so a caller can recognise its own mkfs later.

    Raises:
        UnsupportedFilesystemError: unknown type, invalid label or UUID (nothing run).
        ToolError: the mkfs tool failed; its stderr is in the message.
    """
    try:
        kind = FilesystemType(fstype)
    except ValueError:
        choices = ", ".join(t.value for t in FilesystemType)
        raise UnsupportedFilesystemError(
            f"unsupported filesystem {fstype!r} (expected one of {choices})"
        ) from None
    _check_label(kind, label)
    fixed = _check_uuid(uuid)
    path = os.fspath(device)
    env: dict[str, str] | None = None
    named = ["-L", label] if label else []
    # Never discard (-K, -E nodiscard): "blank" is checked at sample points (`probe.blank_sample_ranges`),
    # which cannot prove everything between is empty; a discard would erase whatever data the samples missed,
    # on every byte of the device, where mkfs itself writes only its metadata.
    if kind is FilesystemType.XFS:
        # -n ftype=1 as Talos (overlayfs needs it). Talos also passes xfsprogs' LTS feature set (-c
        # options=lts_6.12.conf); xfsprogs 6.1 has no such set and refuses its own lts_6.1.conf (nrext64).
        argv = ["mkfs.xfs", "-q", "-K", "-n", "ftype=1", *(["-f"] if force else []), *named]
        argv += ["-m", f"uuid={fixed}"] if fixed else []
        if device_size(path) < _XFS_MIN_SUPPORTED:
            env = _XFS_SMALL_ENV
    elif kind is FilesystemType.EXT4:
        argv = ["mkfs.ext4", "-q", "-E", "nodiscard", *(["-F"] if force else []), *named]
        argv += ["-U", fixed] if fixed else []
    else:
        argv = ["mkswap", *(["-f"] if force else []), *named, *(["-U", fixed] if fixed else [])]
    try:
        run_tool([*argv, path], env=env)  # the device last: wrappers of the tools (tests) rely on it
    except ToolError as error:
        raise ToolError(error.argv, error.returncode, _without_usage(error.stderr)) from None

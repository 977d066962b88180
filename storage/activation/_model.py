"""What an activation backend is given (a data segment on a device) and what it reports back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, final

from ._errors import ActivationError

if TYPE_CHECKING:
    from collections.abc import Iterable

BackendName = Literal["dm", "fuse"]

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,126}")
MAPPING_PREFIX: Final = "luks2-"
DEFAULT_RUNTIME_DIR: Final = Path("/run/volumed/fuse")
"""Where the fuse backend keeps its FUSE server's views, socket and state."""

CRYPT_FLAGS: Final = (
    "allow_discards",
    "same_cpu_crypt",
    "submit_from_crypt_cpus",
    "no_read_workqueue",
    "no_write_workqueue",
)
"""dm-crypt's optional flags a volume may be activated with (cryptsetup's ``--allow-discards`` and
``--perf-*``), in the order cryptsetup writes them into the table."""


def check_flags(flags: Iterable[str]) -> tuple[str, ...]:
    """``flags`` once each in :data:`CRYPT_FLAGS` order; ActivationError naming any unknown one."""
    wanted = set(flags)
    unknown = sorted(wanted - set(CRYPT_FLAGS))
    if unknown:
        raise ActivationError(
            f"unknown dm-crypt flag(s) {', '.join(map(repr, unknown))}: use {', '.join(CRYPT_FLAGS)}"
        )
    return tuple(flag for flag in CRYPT_FLAGS if flag in wanted)


def mapping_name(volume_id: str) -> str:
    """The mapping name of a volume, as Talos names it: ``luks2-<volume id>`` (e.g. ``luks2-STATE``)."""
    return check_name(MAPPING_PREFIX + volume_id)


def check_name(name: str) -> str:
    """Return ``name`` if it is usable as a device-mapper name and a file name, else raise ActivationError."""
    if not _NAME.fullmatch(name):
        raise ActivationError(
            f"invalid mapping name {name!r}: use 1-127 letters, digits, '.', '_', '+' or '-', "
            "starting with a letter or digit"
        )
    return name


@final
@dataclass(frozen=True)
class DataSegment:
    """An encrypted LUKS2 data segment, as the header describes it, on a concrete device.

    Attributes:
        device: the block device or image file holding the segment.
        offset: byte offset of the segment in ``device``.
        size: segment size in bytes, or None for "dynamic" (to the end of the device).
        sector_size: the segment's data unit size.
        iv_tweak: IV of the first data unit, in 512-byte units.
        cipher: the segment's encryption (``aes-xts-plain64``).
        luks_uuid: the LUKS2 header UUID, for the dm UUID (``CRYPT-LUKS2-<uuid>-<name>``) like cryptsetup.
    """

    device: str
    offset: int
    size: int | None
    sector_size: int
    iv_tweak: int = 0
    cipher: str = "aes-xts-plain64"
    luks_uuid: str | None = None

    def __post_init__(self) -> None:
        if self.offset < 0 or self.offset % 512:
            raise ActivationError(f"segment offset {self.offset} of {self.device} is not a multiple of 512")
        if self.sector_size not in (512, 1024, 2048, 4096):
            raise ActivationError(f"segment sector size {self.sector_size} is not 512, 1024, 2048 or 4096")
        if self.size is not None and (self.size <= 0 or self.size % self.sector_size):
            raise ActivationError(
                f"segment size {self.size} of {self.device} is not a positive multiple of {self.sector_size}"
            )
        if not 0 <= self.iv_tweak < 1 << 64:
            raise ActivationError(f"segment iv_tweak {self.iv_tweak} is outside 0..2**64-1")


@final
@dataclass(frozen=True)
class ActivationStatus:
    """What a backend knows about one mapping.

    Attributes:
        name: the mapping name.
        backend: which backend made it.
        active: whether the decrypted block device exists and works.
        device: the decrypted block device (``/dev/mapper/<name>`` or ``/dev/loopN``), when it exists.
        source: the encrypted device, when known.
        offset: the segment offset in ``source``, when known.
        size: the decrypted size in bytes, when known.
        problem: why a mapping that exists is not usable (e.g. its FUSE server died), else None.
        ignored_flags: dm-crypt flags it was asked for and cannot honour (the fuse backend has no
            workqueues and passes no discards), for the volume's status.
    """

    name: str
    backend: BackendName
    active: bool
    device: str | None = None
    source: str | None = None
    offset: int | None = None
    size: int | None = None
    problem: str | None = None
    ignored_flags: tuple[str, ...] = ()

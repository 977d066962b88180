"""libblkid's view of a region, from ``blkid -p``: every superblock and partition-table type it knows.

Blocking (runs blkid): call it from a worker thread.

Our own detectors know a handful of formats; libblkid knows about a hundred (minix, cramfs, ceph_bluestore,
zfs, ...). Before anything is formatted, its opinion is asked too: a signature only libblkid knows is still
somebody's data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Final

BLKID_TIMEOUT_S: Final = 60.0
_NOTHING_FOUND: Final = 2  # blkid's exit status when the probe finds nothing
_AMBIVALENT: Final = 8  # blkid -p: more than one superblock matched and none could be preferred
_MAX_ROUNDS: Final = 16


class BlkidError(OSError):
    """blkid is missing, failed or hung: nothing can be said of the region, so nothing may be formatted."""


@dataclass(frozen=True)
class BlkidReport:
    """What libblkid's low-level probe found: ``types`` as blkid names them (``ext4``, ``crypto_LUKS``,
    ``minix``, ``gpt``), in the order found; ``ambivalent`` when it saw several and would not choose."""

    types: tuple[str, ...] = ()
    ambivalent: bool = False

    @property
    def empty(self) -> bool:
        return not self.types and not self.ambivalent


def _blkid() -> str:
    path = shutil.which("blkid") or shutil.which("blkid", path="/usr/sbin:/sbin")
    if path is None:
        raise BlkidError("blkid (util-linux) is not installed: cannot tell whether the device is blank")
    return path


def _export_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value
    return fields


def blkid_probe(path: str, offset: int = 0, size: int | None = None, *, fd: int | None = None) -> BlkidReport:
    """Every type ``blkid -p`` finds in ``size`` bytes of ``path`` at ``offset`` (a partition of an image).

    ``blkid -p`` reports one superblock per run; it is run again with each type found filtered out
    (``-n noA,B``) until it finds nothing, so a stale LUKS2 secondary header does not hide the ext4 under
    it. A partition table (``PTTYPE``) is reported once. ``fd``: probe this open descriptor instead of
    opening ``path`` again (``path`` then only names it in errors).
    """
    blkid = _blkid()
    target = f"/dev/fd/{fd}" if fd is not None else path
    supers: list[str] = []  # TYPE: superblocks, which -n can filter out
    tables: list[str] = []  # PTTYPE: partition tables, which it cannot
    for _ in range(_MAX_ROUNDS):
        args = [blkid, "-p", "-o", "export", "-O", str(offset)]
        if size is not None:
            args += ["-S", str(size)]
        if supers:
            args += ["-n", "no" + ",".join(supers)]
        args.append(target)
        try:
            done = subprocess.run(
                args,
                capture_output=True,
                text=True,
                timeout=BLKID_TIMEOUT_S,
                check=False,
                pass_fds=() if fd is None else (fd,),
                env={**os.environ, "LC_ALL": "C"},
            )
        except subprocess.TimeoutExpired:
            raise BlkidError(f"blkid -p {path} did not finish in {BLKID_TIMEOUT_S:.0f} s") from None
        except OSError as exc:
            raise BlkidError(f"blkid -p {path}: {exc.strerror}") from None
        if done.returncode == _NOTHING_FOUND:
            break
        if done.returncode == _AMBIVALENT:
            return BlkidReport((*supers, *tables), ambivalent=True)
        if done.returncode != 0:
            detail = done.stderr.strip() or f"exit status {done.returncode}"
            raise BlkidError(f"blkid -p {path} failed: {detail}")
        fields = _export_fields(done.stdout)
        table = fields.get("PTTYPE")
        if table and table not in tables:
            tables.append(table)
        kind = fields.get("TYPE")
        if not kind or kind in supers:
            break  # only a partition table is left (or the filter did not take): nothing more to find
        supers.append(kind)
    return BlkidReport((*supers, *tables))

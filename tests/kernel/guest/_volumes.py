"""Guest-side helpers over the project's storage libraries: small KDFs, the data segment of a LUKS2 volume,
dm tables and ``cryptsetup status`` as dicts, mounting a decrypted device and the dm devices left."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

from volumed.storage.activation import DataSegment
from volumed.storage.filesystem import make_filesystem, mount, umount
from volumed.storage.luks2 import KdfSettings, Luks2Volume

if TYPE_CHECKING:
    from ._support import Scenario

KDF: Final = KdfSettings(type="argon2id", iterations=4, memory_kib=32768, parallel=1)
"""Small argon2id parameters (cryptsetup: ``--pbkdf-memory 32768 --pbkdf-force-iterations 4``): a key slot
opens in about a second under emulation."""

MOUNT_ROOT: Final = Path("/run/mnt")


def data_segment(volume: Luks2Volume, device: str) -> DataSegment:
    """The data segment of ``volume`` on ``device`` as the activation backends take it (explicit size, as the
    controllers pass it)."""
    segment = volume.segment
    return DataSegment(
        device=device,
        offset=segment.offset,
        size=volume.data_size // segment.sector_size * segment.sector_size,
        sector_size=segment.sector_size,
        iv_tweak=segment.iv_tweak,
        cipher=segment.encryption,
        luks_uuid=volume.uuid,
    )


def filesystem_type() -> str:
    """xfs when the guest kernel has it (the initramfs loads the module), else ext4."""
    known = Path("/proc/filesystems").read_text().split()
    return "xfs" if "xfs" in known else "ext4"


def dm_devices() -> dict[str, str]:
    """The device-mapper devices that exist now: name -> dm-N (from sysfs, so no tool can hide one)."""
    devices: dict[str, str] = {}
    for entry in sorted(Path("/sys/block").iterdir()):
        name_file = entry / "dm" / "name"
        if entry.name.startswith("dm-") and name_file.exists():
            devices[name_file.read_text().strip()] = entry.name
    return devices


def dm_table(scenario: Scenario, name: str) -> dict[str, str]:
    """``dmsetup table NAME`` as named fields; the key field is reduced to how the key was given
    (``logon:<description>`` for a keyring key, ``hex`` for a key in the table)."""
    line = scenario.run("dmsetup", "table", name).stdout.strip()
    fields = line.split()
    scenario.check(
        len(fields) >= 8 and fields[2] == "crypt", f"dmsetup table {name} is not a crypt table: {line!r}"
    )
    key = fields[4]
    key_kind = "logon:" + key.split(":", 3)[3] if key.startswith(":") and ":logon:" in key else "hex"
    return {
        "start": fields[0],
        "sectors": fields[1],
        "target": fields[2],
        "cipher": fields[3],
        "key": key_kind,
        "iv_offset": fields[5],
        "device": fields[6],
        "offset": fields[7],
        "options": " ".join(fields[8:]),
    }


def cryptsetup_status(scenario: Scenario, name: str) -> dict[str, str]:
    """``cryptsetup status NAME`` as a dict (its ``key: value`` lines; the first line as ``state``)."""
    output = scenario.run("cryptsetup", "status", name).stdout
    lines = output.splitlines()
    status = {"state": lines[0].strip() if lines else ""}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if value:
            status[key.strip()] = value.strip()
    return status


def block_device_number(path: str) -> str:
    """``major:minor`` of a block device, as dm tables name their source."""
    rdev = os.stat(path).st_rdev
    return f"{os.major(rdev)}:{os.minor(rdev)}"


def write_file(scenario: Scenario, device: str, fstype: str, mount_name: str, name: str, text: str) -> None:
    """Mount ``device`` at /run/mnt/MOUNT_NAME, write ``name`` with ``text`` durably, and unmount."""
    target = MOUNT_ROOT / mount_name
    target.mkdir(parents=True, exist_ok=True)
    mount(device, target, fstype=fstype)
    try:
        path = target / name
        with path.open("w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        scenario.note(f"wrote {path} ({len(text)} bytes)")
    finally:
        umount(target)


def read_file(scenario: Scenario, device: str, fstype: str, mount_name: str, name: str) -> str:
    """Mount ``device`` read-only at /run/mnt/MOUNT_NAME, read ``name``, and unmount."""
    target = MOUNT_ROOT / mount_name
    target.mkdir(parents=True, exist_ok=True)
    mount(device, target, fstype=fstype, read_only=True)
    try:
        text = (target / name).read_text()
        scenario.note(f"read {target / name} ({len(text)} bytes)")
        return text
    finally:
        umount(target)


def format_filesystem(scenario: Scenario, device: str, fstype: str, label: str) -> None:
    """mkfs ``fstype`` on the decrypted ``device`` with the project's filesystem helper."""
    scenario.note(f"mkfs.{fstype} -L {label} {device}")
    make_filesystem(device, fstype, label=label)


def note_stale_node(scenario: Scenario, mapped: str) -> None:
    """Record whether ``/dev/mapper/NAME`` outlived its dm device.

    Without udev (an initramfs, this guest) ``dmsetup remove`` leaves the node behind, pointing at a dm minor
    the next mapping reuses; ``dmsetup mknodes NAME`` after the remove deletes it (cryptsetup close does
    so). Recorded, not failed: the dm backend's owner decides the fix.
    """
    stale = Path(mapped).exists()
    scenario.record("stale_mapper_node", stale)
    if stale:
        scenario.note(
            f"NOTE: {mapped} is left behind after DmActivator.deactivate (no udev; see _volumes.py)"
        )

"""Guest-side helpers of the lifecycle scenarios: counting key-slot KDF runs, cryptsetup's view of a volume
(``luksDump`` JSON, ``status``) next to volumed's VolumeStatus, and what must be gone after shutdown."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from volumed.storage import loop
from volumed.storage.filesystem import read_mounts
from volumed.storage.luks2 import Luks2Volume, lowlevel
from volumed.storage.luks2 import _keyslots as keyslots_module

from ._volumes import cryptsetup_status, dm_devices

if TYPE_CHECKING:
    from collections.abc import Iterator

    from volumed.resources import VolumeStatusSpec

    from ._support import Scenario

MAPPER: Final = Path("/dev/mapper")
SYS_CLASS_BLOCK: Final = Path("/sys/class/block")


@contextlib.contextmanager
def header_device(status: VolumeStatusSpec) -> Iterator[str]:
    """A device whose first byte is the volume's LUKS2 header, for cryptsetup: the status' location, or a
    read-only loop device over it when the volume is addressed as a region of its disk (``offset``)."""
    if not status.offset:
        yield status.location
        return
    with loop.attached(
        status.location, offset=status.offset, size_limit=status.size, read_only=True
    ) as device:
        yield device.path


def disk_position(device: str, offset: int) -> tuple[str, int]:
    """``offset`` in block device ``device`` as (whole disk, byte offset in it): a partition and its disk
    from the partition's start are the same bytes."""
    entry = SYS_CLASS_BLOCK / os.path.basename(device)
    if (entry / "partition").exists():
        start = int((entry / "start").read_text()) * 512
        return entry.resolve().parent.name, start + offset
    return entry.name, offset


@dataclass
class KdfCounter:
    """Counts the key-slot KDF runs of our LUKS2 library in this process, by the slot's salt.

    Wraps ``derive_key`` where the key-slot code calls it (thread-safe: the subsystem runs KDFs in workers).
    """

    salts: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> None:
        original = lowlevel.derive_key
        if getattr(keyslots_module, "derive_key", None) is not original:
            raise AssertionError(
                "volumed.storage.luks2._keyslots no longer calls derive_key: update the counter"
            )

        def counted(kdf: Any, passphrase: bytes, length: int) -> bytes:
            key: bytes = original(kdf, passphrase, length)
            with self.lock:
                self.salts.append(bytes(kdf.salt))
            return key

        setattr(keyslots_module, "derive_key", counted)  # noqa: B010 (a private module's name)

    def take(self) -> list[bytes]:
        with self.lock:
            salts, self.salts = self.salts, []
        return salts


def kdf_runs_per_volume(salts: list[bytes], statuses: dict[str, VolumeStatusSpec]) -> dict[str, int]:
    """KDF runs per volume: a run belongs to the volume whose header has a key slot with its salt; runs of
    slots no header holds any more count under ``"?"``."""
    owner: dict[bytes, str] = {}
    for volume_id, status in statuses.items():
        with Luks2Volume.open(
            status.location, offset=status.offset, size=status.size or None, read_only=True
        ) as volume:
            for slot in volume.keyslots.values():
                owner[bytes(slot.kdf.salt)] = volume_id
    counts = dict.fromkeys(statuses, 0)
    for salt in salts:
        volume_id = owner.get(salt, "?")
        counts[volume_id] = counts.get(volume_id, 0) + 1
    return counts


def luks_dump(s: Scenario, device: str) -> dict[str, Any]:
    """``cryptsetup luksDump --dump-json-metadata`` of ``device`` (cryptsetup's parser, not ours)."""
    metadata: dict[str, Any] = json.loads(
        s.run("cryptsetup", "luksDump", "--dump-json-metadata", device).stdout
    )
    return metadata


def cryptsetup_view(s: Scenario, volume_id: str, status: VolumeStatusSpec) -> dict[str, Any]:
    """What cryptsetup says about an open encrypted volume, checked against its VolumeStatus.

    Agreement: the mapping is ``luks2-<id>``, in use (mounted), LUKS2 with the header's cipher and key size,
    over the bytes of the status' location from the header's data offset (a volume provisioned this boot may
    be mapped over its disk at the partition's offset, and its status name the partition node once discovery
    saw it: same bytes); the slot that opened is one of the header's key slots, and there is one key slot per
    configured key unless a key failed to sync.
    """
    name = f"luks2-{volume_id}"
    s.check(
        status.mount_location == f"/dev/mapper/{name}",
        f"{volume_id}: mount_location {status.mount_location!r}, not /dev/mapper/{name}",
    )
    with header_device(status) as header:
        dump = luks_dump(s, header)
    segment = dump["segments"]["0"]
    keyslots = sorted(int(slot) for slot in dump["keyslots"])
    active = cryptsetup_status(s, name)
    checks = {
        "type": "LUKS2",
        "cipher": segment["encryption"],
        "keysize": f"{dump['keyslots'][str(keyslots[0])]['key_size'] * 8} bits" if keyslots else "",
    }
    for key, wanted in checks.items():
        s.check(
            active.get(key) == wanted,
            f"{volume_id}: cryptsetup status {key} is {active.get(key)!r}, "
            f"luksDump/VolumeStatus say {wanted!r}",
        )
    mapped = disk_position(active["device"], int(active["offset"].split()[0]) * 512)
    wanted = disk_position(status.location, status.offset + int(segment["offset"]))
    s.check(
        mapped == wanted,
        f"{volume_id}: cryptsetup status maps {active['device']} at {active['offset']} = {mapped}; "
        f"VolumeStatus and luksDump say {status.location}@{status.offset} + {segment['offset']} = {wanted}",
    )
    s.check(
        active["state"] == f"/dev/mapper/{name} is active and is in use.",
        f"{volume_id}: cryptsetup status says {active['state']!r} (expected active and in use: mounted)",
    )
    s.check(
        status.encryption_slot in keyslots,
        f"{volume_id}: VolumeStatus says slot {status.encryption_slot} opened, luksDump has slots {keyslots}",
    )
    if not status.encryption_failed_syncs:
        s.check(
            len(keyslots) == len(status.configured_encryption_keys),
            f"{volume_id}: luksDump has slots {keyslots} "
            f"for configured keys {status.configured_encryption_keys}",
        )
    s.note(
        f"{volume_id}: cryptsetup agrees: {name} over {status.location}, {active['cipher']}, "
        f"slots {keyslots}, slot {status.encryption_slot} opened"
    )
    return {
        "keyslots": keyslots,
        "kdf": sorted({slot["kdf"]["type"] for slot in dump["keyslots"].values()}),
        "tokens": {token: value["type"] for token, value in dump["tokens"].items()},
        "token_keyslots": {token: value["keyslots"] for token, value in dump["tokens"].items()},
        "cipher": segment["encryption"],
        "status": active,
        "disk_position": list(mapped),
    }


def mounts_under(root: Path) -> list[str]:
    return [m.target for m in read_mounts() if m.target == str(root) or m.target.startswith(f"{root}/")]


def mapper_nodes() -> list[str]:
    return sorted(entry.name for entry in MAPPER.iterdir() if entry.name != "control")


def shutdown_state(s: Scenario, root: Path) -> dict[str, Any]:
    """What is left after the subsystem stopped: mounts under ``root``, dm devices (sysfs and ``dmsetup
    ls``), and nodes in /dev/mapper. All must be empty."""
    listed = s.run("dmsetup", "ls").stdout
    left = {
        "mounts": mounts_under(root),
        "dm_devices": sorted(dm_devices()),
        "dmsetup_ls_luks2": [line.split()[0] for line in listed.splitlines() if line.startswith("luks2-")],
        "mapper_nodes": mapper_nodes(),
    }
    for what, found in left.items():
        s.check(not found, f"after shutdown, {what} left: {found}")
    s.note("after shutdown: nothing mounted under the root, no dm device, /dev/mapper holds only control")
    return left


def dump_statuses(statuses: dict[str, VolumeStatusSpec]) -> Iterator[tuple[str, dict[str, Any]]]:
    for volume_id, status in sorted(statuses.items()):
        yield volume_id, status.model_dump(mode="json")

"""UserVolumeConfig ``volumeType: disk`` (issue 17): the whole disk its selector matches is the volume, as
Talos v1.12 makes it: no partition table, the filesystem (or LUKS2) on the disk itself, mounted at
/var/mnt/<name>. The disk is formatted only when blank: one holding a partition table, a filesystem of
another type or data without a signature is refused and left byte-identical.

The selected disk is a third image, told apart from the system and data disks by its size. What is on it is
read with real tools (blkid, cryptsetup), never with volumed's own probe.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any, Final

import pytest

from tests._tools import require_tool
from tests.system.lifecycle._node import (
    MIB,
    Region,
    cryptsetup_opens,
    describe,
    luks_slots,
    phases,
    run_tool,
    static_key,
    status_of,
    user_volume_config,
    volume_config,
)
from volumed.storage.filesystem import find_mount
from volumed.storage.gpt import new_table, write_partition_table

if TYPE_CHECKING:
    from pathlib import Path

    from tests.system.lifecycle._node import Node

WHOLE_DISK_SIZE: Final = 320 * MIB  # neither the system disk (1 GiB) nor the data disk (256 MiB)
SELECTOR: Final = f"disk.size == {WHOLE_DISK_SIZE}u"
FAST_PBKDF: Final = {"type": "argon2id", "memory": 32, "iterations": 4, "parallel": 1}


def disk_volume_config(
    name: str, *, filesystem: str = "xfs", keys: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "v1alpha1",
        "kind": "UserVolumeConfig",
        "name": name,
        "volumeType": "disk",
        "provisioning": {"diskSelector": {"match": SELECTOR}},
        "filesystem": {"type": filesystem},
    }
    if keys:
        document["encryption"] = {"provider": "luks2", "keys": keys, "pbkdf": dict(FAST_PBKDF)}
    return document


def whole_disk(node: Node) -> Path:
    path = node.workdir / "whole.img"
    with path.open("wb") as image:
        image.truncate(WHOLE_DISK_SIZE)
    return path


def blkid(path: Path, tag: str) -> str:
    """What blkid (low-level probe of the file itself) says of the whole image."""
    result = run_tool(require_tool("blkid"), "-p", "-o", "value", "-s", tag, path, check=False)
    return result.stdout.strip()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_blank_disk_gets_the_filesystem_on_the_whole_disk_and_keeps_it(node: Node) -> None:
    disk = whole_disk(node)
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), disk_volume_config("whole"))
    target = node.root / "var" / "mnt" / "whole"
    disks = [*node.disks, str(disk)]
    async with node.boot(disks=disks) as boot:
        snapshot = boot.snapshot
        assert phases(snapshot)["u-whole"] == "ready", describe(snapshot)
        status = status_of(snapshot, "u-whole")
        assert (status.location, status.offset, status.parent_location, status.partition_index) == (
            str(disk),
            0,
            "",
            0,
        )
        assert status.filesystem == "xfs"
        assert (blkid(disk, "TYPE"), blkid(disk, "PTTYPE")) == ("xfs", "")  # no partition table made
        made = blkid(disk, "UUID")
        mounted = find_mount(target)
        assert mounted is not None
        assert mounted.fstype == "xfs"
        (target / "kept").write_bytes(b"across starts")
    async with node.boot(disks=disks) as boot:
        assert phases(boot.snapshot)["u-whole"] == "ready", describe(boot.snapshot)
        assert (target / "kept").read_bytes() == b"across starts"
    assert blkid(disk, "UUID") == made  # never formatted again


def _gpt(path: Path) -> str:
    write_partition_table(path, new_table(WHOLE_DISK_SIZE))
    return "gpt"


def _data(path: Path) -> str:
    with path.open("r+b") as image:
        image.seek(512 * 1024)  # no signature: data where the formatter's blank check reads (the first MiB)
        image.write(os.urandom(4096))
    return "unknown data"


def _ext4(path: Path) -> str:
    run_tool(require_tool("mkfs.ext4"), "-q", "-F", path)
    return "ext4"


@pytest.mark.parametrize("content", [_gpt, _data, _ext4], ids=["partition-table", "data", "ext4"])
async def test_disk_holding_anything_is_refused_and_left_byte_identical(node: Node, content: Any) -> None:
    disk = whole_disk(node)
    found = content(disk)
    before = digest(disk)
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), disk_volume_config("whole"))
    async with node.boot(disks=[*node.disks, str(disk)]) as boot:
        status = status_of(boot.snapshot, "u-whole")
        assert status.phase.value == "failed", describe(boot.snapshot)
        assert status.error_message.startswith(f"filesystem type mismatch: {found}"), status.error_message
        assert status.error_message.endswith("!= xfs")
        assert phases(boot.snapshot)["EPHEMERAL"] == "ready"
    assert digest(disk) == before


async def test_encrypted_disk_volume_is_luks2_on_the_whole_disk(node: Node) -> None:
    disk = whole_disk(node)
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        disk_volume_config("secret", filesystem="ext4", keys=[static_key(0, "whole-disk-pass")]),
    )
    target = node.root / "var" / "mnt" / "secret"
    async with node.boot(disks=[*node.disks, str(disk)]) as boot:
        snapshot = boot.snapshot
        assert phases(snapshot)["u-secret"] == "ready", describe(snapshot)
        status = status_of(snapshot, "u-secret")
        assert (status.location, status.encryption_provider, status.filesystem) == (
            str(disk),
            "luks2",
            "ext4",
        )
        mounted = find_mount(target)
        assert mounted is not None
        assert mounted.fstype == "ext4"
    whole = Region(disk, 0, WHOLE_DISK_SIZE)
    assert blkid(disk, "TYPE") == "crypto_LUKS"
    assert luks_slots(whole) == [0]
    assert cryptsetup_opens(whole, b"whole-disk-pass")
    assert not cryptsetup_opens(whole, b"another")


async def test_selector_matching_the_system_disk_is_refused(node: Node) -> None:
    before = digest(node.data_disk)
    document = disk_volume_config("whole")
    document["provisioning"]["diskSelector"]["match"] = "system_disk"
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), document)
    async with node.boot() as boot:
        status = status_of(boot.snapshot, "u-whole")
        assert status.phase.value == "failed", describe(boot.snapshot)
        assert status.error_message == (
            f"the disk {node.system_disk} is the system disk (it holds META): a disk volume never takes it"
        )
        assert phases(boot.snapshot)["EPHEMERAL"] == "ready"
    assert digest(node.data_disk) == before


async def test_a_disk_volume_s_disk_gets_no_partition_of_another_volume(node: Node) -> None:
    disk = whole_disk(node)
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        disk_volume_config("whole"),
        user_volume_config("part", selector=SELECTOR),
    )
    async with node.boot(disks=[*node.disks, str(disk)]) as boot:
        snapshot = boot.snapshot
        assert phases(snapshot)["u-whole"] == "ready", describe(snapshot)
        part = status_of(snapshot, "u-part")
        assert part.phase.value == "failed", describe(snapshot)
        assert part.error_message == "cannot provision volume u-part: no disk matches the selector"
    assert (blkid(disk, "TYPE"), blkid(disk, "PTTYPE")) == ("xfs", "")


async def test_a_ready_disk_volume_keeps_its_disk_when_the_selector_changes(node: Node) -> None:
    disk = whole_disk(node)
    other = node.workdir / "other.img"
    with other.open("wb") as image:
        image.truncate(WHOLE_DISK_SIZE + 32 * MIB)
    moved = disk_volume_config("secret", filesystem="ext4", keys=[static_key(0, "whole-disk-pass")])
    moved["provisioning"]["diskSelector"]["match"] = f"disk.size == {WHOLE_DISK_SIZE + 32 * MIB}u"
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        disk_volume_config("secret", filesystem="ext4", keys=[static_key(0, "whole-disk-pass")]),
    )
    before = digest(other)
    target = node.root / "var" / "mnt" / "secret"
    async with node.boot(disks=[*node.disks, str(disk), str(other)]) as boot:
        assert status_of(boot.snapshot, "u-secret").location == str(disk), describe(boot.snapshot)
        (target / "kept").write_bytes(b"in use")
        node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), moved)
        snapshot = await boot.wait_for(
            lambda s: "disk selector changed" in status_of(s, "u-secret").error_message,
            what="the selector change to be seen",
        )
        status = status_of(snapshot, "u-secret")
        assert (status.phase.value, status.location) == ("ready", str(disk))
        assert status.error_message == (
            f"the disk selector changed (it selects the disk {other}), the volume stays on {disk}: kept as it"
            " is until the next boot"
        )
        assert (target / "kept").read_bytes() == b"in use"
    assert digest(other) == before  # the newly selected disk was not formatted under the running volume
    assert blkid(disk, "TYPE") == "crypto_LUKS"


async def test_an_existing_volume_matching_a_disk_volume_s_filesystem_is_refused(node: Node) -> None:
    """The disk volume's xfs is on the whole image: an ExistingVolumeConfig matching it would mount it a
    second time through another loop device (two caches over one filesystem)."""
    disk = whole_disk(node)
    existing = {
        "apiVersion": "v1alpha1",
        "kind": "ExistingVolumeConfig",
        "name": "again",
        "discovery": {
            "volumeSelector": {"match": f'volume.name == "xfs" && volume.size == {WHOLE_DISK_SIZE}u'}
        },
    }
    node.write_config(
        volume_config("STATE"), volume_config("EPHEMERAL"), disk_volume_config("whole"), existing
    )
    async with node.boot(disks=[*node.disks, str(disk)]) as boot:
        snapshot = await boot.wait_for(
            lambda s: status_of(s, "e-again").phase.value == "failed", what="e-again to be refused"
        )
        assert phases(snapshot)["u-whole"] == "ready", describe(snapshot)
        assert status_of(snapshot, "e-again").error_message == (
            f"the volume selector matches {disk}, the disk of the disk volume u-whole of this config: it is"
            " not mounted a second time"
        )
        assert "e-again" not in snapshot.mounted
        assert find_mount(node.root / "var" / "mnt" / "whole") is not None


async def test_encrypted_disk_volume_on_a_disk_with_a_partition_table_is_refused(node: Node) -> None:
    disk = whole_disk(node)
    _gpt(disk)
    before = digest(disk)
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        disk_volume_config("secret", keys=[static_key(0, "whole-disk-pass")]),
    )
    async with node.boot(disks=[*node.disks, str(disk)]) as boot:
        status = status_of(boot.snapshot, "u-secret")
        assert (status.phase.value, status.error_message) == (
            "failed",
            "block dev type mismatch: gpt != luks",
        )
    assert digest(disk) == before

"""ExistingVolumeConfig (issue 17): a volume already on a disk, found by its CEL volume selector and mounted
at /var/mnt/<name> as it is, as Talos v1.12 does; volumed never provisions, encrypts or formats it.

Read-only: mounted, its files visible, and the partition byte-identical after two boots. Read-write: the
filesystem is not made again (same UUID), files written through the mount are kept. A selector matching
nothing leaves the volume missing and the disk untouched; one matching a blank partition fails without
writing it (Talos: "filesystem not found"); several matches take the first discovered one.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from typing import TYPE_CHECKING, Any, Final

import pytest

from tests._tools import require_tool
from tests.system.lifecycle._node import (
    MIB,
    Region,
    describe,
    phases,
    status_of,
    volume_config,
)
from volumed.storage.blockdev import Region as BlockRegion
from volumed.storage.filesystem import find_mount
from volumed.storage.gpt import read_partition_table, write_partition_table
from volumed.storage.probe import probe_region

if TYPE_CHECKING:
    from pathlib import Path

    from tests.system.lifecycle._node import Node

PARTITION_SIZE: Final = 48 * MIB


def existing_volume_config(name: str, match: str, *, read_only: bool | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "v1alpha1",
        "kind": "ExistingVolumeConfig",
        "name": name,
        "discovery": {"volumeSelector": {"match": match}},
    }
    if read_only is not None:
        document["mount"] = {"readOnly": read_only}
    return document


def add_partition(node: Node, label: str) -> Region:
    """A new partition named ``label`` on the data disk (left blank)."""
    table = read_partition_table(node.data_disk)
    table, _ = table.add_partition(size=PARTITION_SIZE, name=label)
    write_partition_table(node.data_disk, table)
    return node.region(label)


def put_ext4(region: Region, workdir: Path, files: dict[str, bytes], *, label: str = "archive") -> str:
    """mkfs.ext4 on the partition, write ``files`` into it; returns the filesystem's UUID."""
    mountpoint = workdir / f"put-{label}"
    mountpoint.mkdir()
    with region.device(read_only=False) as device:
        subprocess.run(
            [require_tool("mkfs.ext4"), "-q", "-L", label, device], check=True, capture_output=True
        )
        subprocess.run([require_tool("mount"), device, str(mountpoint)], check=True)
        try:
            for name, payload in files.items():
                (mountpoint / name).write_bytes(payload)
        finally:
            subprocess.run([require_tool("umount"), str(mountpoint)], check=True)
    return fs_uuid(region)


def fs_uuid(region: Region) -> str:
    signature = probe_region(BlockRegion(str(region.path), region.offset, region.size))
    assert signature is not None
    assert signature.uuid
    return signature.uuid


def disk_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def target_of(node: Node, name: str) -> Path:
    return node.root / "var" / "mnt" / name


async def test_read_only_existing_volume_is_mounted_and_never_written(node: Node) -> None:
    region = add_partition(node, "data")
    payload = os.urandom(128 * 1024)
    put_ext4(region, node.workdir, {"payload": payload})
    before = region.digest()
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config(
            "archive", 'volume.partition_label == "data" && volume.name == "extfs"', read_only=True
        ),
    )
    target = target_of(node, "archive")
    for _ in range(2):  # a restart finds it again, and writes nothing either
        async with node.boot() as boot:
            snapshot = boot.snapshot
            assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "ready", "e-archive": "ready"}, (
                describe(snapshot)
            )
            status = status_of(snapshot, "e-archive")
            assert (status.filesystem, status.location, status.offset) == (
                "ext4",
                str(region.path),
                region.offset,
            )
            assert status.encryption_provider == ""
            assert "e-archive" in snapshot.mounted
            assert (target / "payload").read_bytes() == payload
            mounted = find_mount(target)
            assert mounted is not None
            assert "ro" in mounted.options
            with pytest.raises(OSError, match="Read-only file system") as refused:
                (target / "new").write_bytes(b"x")
            assert refused.value.errno == errno.EROFS
        assert region.digest() == before  # byte for byte: never formatted, nor written by the mount


async def test_read_write_existing_volume_keeps_its_filesystem_and_files(node: Node) -> None:
    region = add_partition(node, "data")
    payload = os.urandom(64 * 1024)
    made = put_ext4(region, node.workdir, {"payload": payload})
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("archive", 'volume.label == "archive"'),
    )
    target = target_of(node, "archive")
    async with node.boot() as boot:
        assert phases(boot.snapshot)["e-archive"] == "ready", describe(boot.snapshot)
        mounted = find_mount(target)
        assert mounted is not None
        assert "rw" in mounted.options
        assert (target / "payload").read_bytes() == payload
        (target / "written").write_bytes(b"kept across boots")
    async with node.boot() as boot:
        assert phases(boot.snapshot)["e-archive"] == "ready", describe(boot.snapshot)
        assert (target / "payload").read_bytes() == payload
        assert (target / "written").read_bytes() == b"kept across boots"
    assert fs_uuid(region) == made  # the same filesystem: never made again


async def test_a_selector_matching_nothing_leaves_the_volume_missing_and_the_disk_untouched(
    node: Node,
) -> None:
    region = add_partition(node, "data")
    put_ext4(region, node.workdir, {"payload": b"data"})
    before = disk_digest(node.data_disk)
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("archive", 'volume.partition_label == "elsewhere"'),
    )
    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "ready", "e-archive": "missing"}, describe(
            snapshot
        )
        assert "e-archive" not in snapshot.mounted
        assert not target_of(node, "archive").exists()
    assert disk_digest(node.data_disk) == before


async def test_a_blank_partition_is_refused_not_formatted(node: Node) -> None:
    region = add_partition(node, "blank")
    before = disk_digest(node.data_disk)
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("archive", 'volume.partition_label == "blank"'),
    )
    async with node.boot() as boot:
        status = status_of(boot.snapshot, "e-archive")
        assert status.phase == "failed", describe(boot.snapshot)
        assert status.error_message == f"filesystem not found on {region.path}"  # Talos' words
        assert "e-archive" not in boot.snapshot.mounted
    assert disk_digest(node.data_disk) == before


async def test_of_several_matches_the_first_discovered_is_taken(node: Node) -> None:
    first, second = add_partition(node, "one"), add_partition(node, "two")
    put_ext4(first, node.workdir, {"which": b"one"}, label="one")
    put_ext4(second, node.workdir, {"which": b"two"}, label="two")
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("archive", 'volume.name == "extfs"', read_only=True),
    )
    async with node.boot() as boot:
        status = status_of(boot.snapshot, "e-archive")
        assert (status.phase, status.partition_index, status.offset) == ("ready", 1, first.offset), describe(
            boot.snapshot
        )
        assert (target_of(node, "archive") / "which").read_bytes() == b"one"


def put_luks(region: Region) -> None:
    with region.device(read_only=False) as device:
        subprocess.run(
            [require_tool("cryptsetup"), "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
             "--pbkdf-force-iterations", "1000", "--key-file", "-", device],
            input=b"passphrase", check=True, capture_output=True,
        )  # fmt: skip


async def test_a_luks_partition_is_refused_not_opened(node: Node) -> None:
    region = add_partition(node, "sealed")
    put_luks(region)
    before = disk_digest(node.data_disk)
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("archive", 'volume.partition_label == "sealed"'),
    )
    async with node.boot() as boot:
        status = status_of(boot.snapshot, "e-archive")
        assert status.phase == "failed", describe(boot.snapshot)
        assert (
            status.error_message == "volume is encrypted, but no encryption config provided"
        )  # Talos' words
        assert status.encryption_provider == ""
    assert disk_digest(node.data_disk) == before


async def test_a_partition_of_another_configured_volume_is_not_mounted_twice(node: Node) -> None:
    """On an image file a second mount would need a second loop device over EPHEMERAL's bytes: two
    independent mounts of one filesystem, which corrupts it. The existing volume fails instead."""
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"))
    async with node.boot():
        pass  # EPHEMERAL gets its filesystem
    node.write_config(
        volume_config("STATE"),
        volume_config("EPHEMERAL"),
        existing_volume_config("archive", 'volume.partition_label == "EPHEMERAL"'),
    )
    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "ready", "e-archive": "failed"}, describe(
            snapshot
        )
        assert (
            "of this config: it is not given a second loop device"
            in status_of(snapshot, "e-archive").error_message
        )
        assert "EPHEMERAL" in snapshot.mounted
        assert find_mount(target_of(node, "archive")) is None

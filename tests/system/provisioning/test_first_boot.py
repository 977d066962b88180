"""First boot on a disk as Talos' installer leaves it, and blank disks (Talos v1.12's volume manager).

The disks are laid out by `sfdisk` and `mkfs.ext4`, never by volumed's own code, and checked with
`sfdisk --json`, `sgdisk -v`, `blkid` and `cryptsetup open --test-passphrase`; the nodeID passphrase (node
UUID + volume ID, see talos-behavior.md) is made here by hand. The node UUID comes from META tag 0x0f, as on a
Talos node.

- STATE is made exactly 100 MiB and EPHEMERAL takes the rest of the system disk (the one with META), both
  encrypted with nodeID keys (they had to exist before, made by `volumed disk create`);
- a blank disk gets a GPT and a partition of exactly ``maxSize``, or all its free space without one;
- a disk holding a filesystem on the raw device is never given a GPT (it was refused with "no GPT found"
  before, and must stay refused: formatting it would destroy the data);
- a relative EPHEMERAL ``maxSize`` (50%) is half of the free space.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, Final

import anyio
import pytest
import yaml

from tests._tools import require_root, require_tool
from tests.system.lifecycle._node import (
    FAST_PBKDF,
    VOLUMED,
    Region,
    clean_up,
    cryptsetup_opens,
    describe,
    leftovers,
    run_tool,
)
from volumed.controllers import SubsystemOptions, build_subsystem, convergence, running
from volumed.resources import VolumePhase

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from volumed.controllers import Convergence

MIB: Final = 1 << 20
SECTOR: Final = 512
#: Talos' installer (GRUB): EFI 100 MiB, BIOS 1 MiB, BOOT 2000 MiB, META 1 MiB = 2102 MiB, from 1 MiB on.
INSTALLER_SCRIPT: Final = """label: gpt
size=100MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI"
size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name="BIOS", attrs="LegacyBIOSBootable"
size=2000MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="BOOT"
size=1MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="META"
"""
INSTALLER_END: Final = (1 + 2102) * MIB  # where META ends: the first boot's free space starts here
SYSTEM_SIZE: Final = 4608 * MIB  # 2103 MiB used, 2504 MiB free before the backup GPT's last MiB
SIZED_DISK: Final = 256 * MIB
REST_DISK: Final = 192 * MIB
EXT4_DISK: Final = 128 * MIB


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    require_root()
    for tool in ("sfdisk", "sgdisk", "blkid", "mkfs.ext4", "mkfs.xfs", "cryptsetup", "losetup"):
        require_tool(tool)
    (tmp_path / "run").mkdir(mode=0o700)
    try:
        yield tmp_path
    finally:
        clean_up(tmp_path, tmp_path / "run")
        left = leftovers(tmp_path, tmp_path / "run")
        assert not left, f"could not clean up: {left}"


def sfdisk_json(image: Path) -> dict[str, Any]:
    table: dict[str, Any] = json.loads(run_tool("sfdisk", "--json", image).stdout)["partitiontable"]
    return table


def partitions(image: Path) -> dict[str, tuple[int, int]]:
    """name -> (start, size) in bytes, as sfdisk reads the table."""
    return {
        p["name"]: (p["start"] * SECTOR, p["size"] * SECTOR) for p in sfdisk_json(image).get("partitions", [])
    }


def installer_disk(path: Path, size: int, node_uuid: str) -> None:
    """A system disk as Talos' installer leaves it (sfdisk), with the node UUID in META tag 0x0f."""
    run_tool("truncate", "-s", str(size), path)
    run_tool("sfdisk", "--quiet", path, input=INSTALLER_SCRIPT.encode())
    meta_start, _ = partitions(path)["META"]
    run_tool(VOLUMED, "meta", "set", path, "0x0f", node_uuid, "--offset", str(meta_start))


def node_id_passphrase(node_uuid: str, volume_id: str) -> bytes:
    """Talos' nodeID key: the node UUID and the volume ID, concatenated (not volumed's code)."""
    return (node_uuid + volume_id).encode()


def system_volume(name: str, provisioning: dict[str, Any] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "v1alpha1",
        "kind": "VolumeConfig",
        "name": name,
        "encryption": {"provider": "luks2", "keys": [{"slot": 0, "nodeID": {}}], "pbkdf": FAST_PBKDF},
    }
    if provisioning is not None:
        document["provisioning"] = provisioning
    return document


def user_volume(name: str, disk_size: int, **sizes: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1alpha1",
        "kind": "UserVolumeConfig",
        "name": name,
        "provisioning": {"diskSelector": {"match": f"disk.size == {disk_size}u"}, **sizes},
        "filesystem": {"type": "ext4"},
    }


async def boot(
    workdir: Path, disks: list[Path], *documents: dict[str, Any], until: Callable[[Convergence], bool]
) -> Convergence:
    """One boot of the subsystem (the node UUID from META, not from an option) until ``until`` holds."""
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump_all(documents))
    options = SubsystemOptions(
        config=config,
        disks=[str(d) for d in disks],
        backend="fuse",
        root=workdir / "root",
        state_dir=workdir / "run",
        dmi_path=str(workdir / "no-dmi"),
        retry_interval=0.5,
        poll_interval=0.2,
        discovery_interval=1.0,
    )
    subsystem = build_subsystem(options)
    async with running(subsystem):
        with anyio.move_on_after(180):
            while True:
                snapshot = await convergence(subsystem.state)
                if until(snapshot):
                    return snapshot
                await anyio.sleep(0.2)
        raise AssertionError(f"not there after 180 s: {describe(await convergence(subsystem.state))}")


def ready(*volume_ids: str) -> Callable[[Convergence], bool]:
    """Every volume named is ready and mounted."""
    return lambda snapshot: all(
        v in snapshot.statuses and snapshot.statuses[v].phase == VolumePhase.READY and v in snapshot.mounted
        for v in volume_ids
    )


async def test_first_boot_provisions_state_and_ephemeral_and_blank_disks(workdir: Path) -> None:
    node_uuid = str(uuid.uuid4())
    system = workdir / "system.img"
    installer_disk(system, SYSTEM_SIZE, node_uuid)
    sized, rest = workdir / "sized.img", workdir / "rest.img"
    run_tool("truncate", "-s", str(SIZED_DISK), sized)
    run_tool("truncate", "-s", str(REST_DISK), rest)

    snapshot = await boot(
        workdir,
        [system, sized, rest],
        system_volume("STATE"),
        system_volume("EPHEMERAL"),
        user_volume("sized", SIZED_DISK, maxSize="64MiB"),
        user_volume("rest", REST_DISK, minSize="16MiB"),
        until=ready("STATE", "EPHEMERAL", "u-sized", "u-rest"),
    )
    assert snapshot.statuses["STATE"].encryption_provider == "luks2"

    # the system disk: STATE exactly 100 MiB right after META, EPHEMERAL all the rest (whole MiBs)
    layout = partitions(system)
    assert list(layout) == ["EFI", "BIOS", "BOOT", "META", "STATE", "EPHEMERAL"]
    assert layout["STATE"] == (INSTALLER_END, 100 * MIB)
    end_of_usable = SYSTEM_SIZE - MIB  # the last MiB holds the backup GPT and is not a whole aligned MiB
    assert layout["EPHEMERAL"] == (INSTALLER_END + 100 * MIB, end_of_usable - INSTALLER_END - 100 * MIB)
    assert "No problems found" in run_tool("sgdisk", "-v", system).stdout
    # both open with the nodeID passphrase made by hand from the UUID in META
    for label in ("STATE", "EPHEMERAL"):
        start, size = layout[label]
        region = Region(system, start, size)
        assert cryptsetup_opens(region, node_id_passphrase(node_uuid, label), slot=0), label
        assert not cryptsetup_opens(region, node_id_passphrase(str(uuid.uuid4()), label)), label

    # a blank disk with maxSize: a new GPT and a partition of exactly maxSize
    assert sfdisk_json(sized)["label"] == "gpt"
    assert partitions(sized) == {"u-sized": (MIB, 64 * MIB)}
    assert "No problems found" in run_tool("sgdisk", "-v", sized).stdout
    # without maxSize: all the free space (1 MiB in, the last MiB holds the backup GPT)
    assert partitions(rest) == {"u-rest": (MIB, REST_DISK - 2 * MIB)}
    assert "No problems found" in run_tool("sgdisk", "-v", rest).stdout


async def test_a_disk_with_a_filesystem_on_the_raw_device_gets_no_gpt(workdir: Path) -> None:
    system, ext4 = workdir / "system.img", workdir / "ext4.img"
    installer_disk(system, SYSTEM_SIZE, str(uuid.uuid4()))
    run_tool("truncate", "-s", str(EXT4_DISK), ext4)
    run_tool("mkfs.ext4", "-q", "-F", ext4)
    ext4_uuid = run_tool("blkid", "-o", "value", "-s", "UUID", ext4).stdout.strip()
    refused = f"{ext4}: no GPT and not blank (holds ext4)"

    def refused_seen(snapshot: Convergence) -> bool:
        status = snapshot.statuses.get("u-never")
        return status is not None and refused in status.error_message

    snapshot = await boot(
        workdir, [system, ext4], user_volume("never", EXT4_DISK, minSize="16MiB"), until=refused_seen
    )
    assert snapshot.statuses["u-never"].phase == VolumePhase.FAILED
    assert "partitiontable" not in run_tool("sfdisk", "--json", ext4, check=False).stdout
    assert run_tool("blkid", "-o", "value", "-s", "UUID", ext4).stdout.strip() == ext4_uuid
    run_tool("e2fsck", "-n", "-f", ext4)


async def test_a_relative_ephemeral_max_size_is_a_share_of_the_free_space(workdir: Path) -> None:
    node_uuid = str(uuid.uuid4())
    system = workdir / "system.img"
    installer_disk(system, SYSTEM_SIZE, node_uuid)
    await boot(
        workdir,
        [system],
        system_volume("STATE"),
        system_volume("EPHEMERAL", {"maxSize": "50%", "minSize": "1GiB"}),
        until=ready("STATE", "EPHEMERAL"),
    )
    layout = partitions(system)
    free_after_state = SYSTEM_SIZE - MIB - INSTALLER_END - 100 * MIB  # allocatable when EPHEMERAL is made
    assert layout["EPHEMERAL"] == (INSTALLER_END + 100 * MIB, free_after_state // 2)
    start, size = layout["EPHEMERAL"]
    assert cryptsetup_opens(Region(system, start, size), node_id_passphrase(node_uuid, "EPHEMERAL"))

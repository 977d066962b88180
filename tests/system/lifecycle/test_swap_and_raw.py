"""SwapVolumeConfig and RawVolumeConfig on a node: partitions ``s-<name>`` and ``r-<name>`` made like user
volumes, encrypted or not; swap is made on a blank partition and turned on (listed by swapon, published as a
SwapStatus) and off at stop; a raw volume gets no filesystem; a second start formats nothing again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import pytest
import structlog

from tests._sizes import sfdisk_sizes
from tests._tools import require_tool
from tests.system.lifecycle._node import (
    FAST_PBKDF,
    cryptsetup_opens,
    describe,
    luks_dump,
    run_tool,
    static_key,
    status_of,
    volume_config,
)
from volumed.controllers.block._swap import FUSE_SWAP_WARNING
from volumed.resources import (
    BLOCK,
    MountStatusDefinition,
    MountStatusSpec,
    SwapStatusDefinition,
    SwapStatusSpec,
)
from volumed.runtime import Kind, Pointer
from volumed.storage import loop
from volumed.storage.blockdev import Region as DiskRegion
from volumed.storage.blockdev import device_size
from volumed.storage.filesystem import read_swaps, swap_active
from volumed.storage.gpt import LINUX_FILESYSTEM_DATA, LINUX_SWAP, read_partition_table
from volumed.storage.probe import probe_region

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.system.lifecycle._node import Booted, Node, Region

PASSPHRASE = "swap and raw secret"
GROWTH = 64 << 20
SWAP_VOLUMES = ("s-plain", "s-secret")
RAW_VOLUMES = ("r-plain", "r-secret")


def _document(kind: str, name: str, *, encrypted: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "v1alpha1",
        "kind": kind,
        "name": name,
        "provisioning": {"diskSelector": {"match": "!system_disk"}, "minSize": "24MiB", "maxSize": "32MiB"},
    }
    if encrypted:
        document["encryption"] = {
            "provider": "luks2",
            "keys": [static_key(0, PASSPHRASE)],
            "pbkdf": dict(FAST_PBKDF),
        }
    return document


CONFIG = (
    volume_config("STATE"),
    volume_config("EPHEMERAL"),
    _document("SwapVolumeConfig", "plain", encrypted=False),
    _document("SwapVolumeConfig", "secret", encrypted=True),
    _document("RawVolumeConfig", "plain", encrypted=False),
    _document("RawVolumeConfig", "secret", encrypted=True),
)


def swap_uuid(device: str) -> str | None:
    """The UUID of the swap signature on ``device`` (our prober), None when there is none."""
    found = probe_region(DiskRegion.whole(device))
    assert found is not None, device
    assert found.type.value == "swap", f"{device}: {found}"
    return found.uuid


def signatures(region: Region) -> str:
    """What ``wipefs -n`` (util-linux, not our prober) finds on the partition: empty when nothing."""
    wipefs = require_tool("wipefs")
    with region.device() as device:
        return run_tool(wipefs, "-n", "--noheadings", "-O", "TYPE", device).stdout.strip()


def blkid_type(region: Region) -> str:
    """``blkid -p``'s TYPE of the partition ('' when it finds nothing: exit status 2)."""
    blkid = require_tool("blkid")
    with region.device() as device:
        result = run_tool(blkid, "-p", "-o", "value", "-s", "TYPE", device, check=False)
    assert result.returncode in (0, 2), result.stderr
    return result.stdout.strip()


def swapon_show() -> list[str]:
    """The devices ``swapon --show`` lists."""
    swapon = require_tool("swapon")
    return run_tool(swapon, "--show=NAME", "--noheadings", "--raw").stdout.split()


def write_at(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
        os.fsync(handle.fileno())


def read_at(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def same_device(a: str, b: str) -> bool:
    return os.stat(a).st_rdev == os.stat(b).st_rdev


async def swap_statuses(boot: Booted) -> dict[str, SwapStatusSpec]:
    found = await boot.subsystem.state.list(Kind(BLOCK, SwapStatusDefinition.type))
    return {resource.id: resource.spec for resource in found}


async def check_converged(boot: Booted, *, raw: bool = True) -> dict[str, str]:
    """Every swap and raw volume ready, each swap on (swapon --show, SwapStatus, MountStatus); returns the
    swap devices by volume."""
    snapshot = boot.snapshot
    assert snapshot.ok, describe(snapshot)
    devices: dict[str, str] = {}
    for volume in (*SWAP_VOLUMES, *(RAW_VOLUMES if raw else ())):
        status = status_of(snapshot, volume)
        assert status.phase.value == "ready", describe(snapshot)
        assert status.filesystem == ("swap" if volume.startswith("s-") else "none"), status
    for volume in SWAP_VOLUMES:
        device = status_of(snapshot, volume).mount_location
        devices[volume] = device
        # on in the kernel and published: the SwapActivator writes the MountStatus after swapon returns, and
        # nothing makes `--once` settle wait for a swap (it may come on after the last mount)
        await boot.wait_for(
            lambda s, d=device, v=volume: swap_active(d) and v in s.mounted,
            what=f"swap on {device}, with its MountStatus",
        )
        assert any(same_device(listed, device) for listed in swapon_show()), (device, swapon_show())
        mount = await boot.subsystem.state.get(
            Pointer(BLOCK, MountStatusDefinition.type, f"{volume}-volumed")
        )
        spec: MountStatusSpec = mount.spec
        assert (spec.volume_id, spec.source, spec.target, spec.filesystem) == (volume, device, "", "swap")
    published = await swap_statuses(boot)
    with anyio.move_on_after(30):
        while not all(any(same_device(listed, d) for listed in published) for d in devices.values()):
            await anyio.sleep(0.1)
            published = await swap_statuses(boot)
    for device in devices.values():
        entry = next((s for name, s in published.items() if same_device(name, device)), None)
        assert entry is not None, f"no SwapStatus for {device}: {sorted(published)}"
        assert entry.type == "partition"
        assert entry.size == device_size(device) - 4096, entry  # all of it but mkswap's header page
        assert entry.size_human.endswith("MiB"), entry
    return devices


async def test_swap_and_raw_volumes_converge_and_are_kept_at_the_next_start(node: Node) -> None:
    """First start: the four partitions are made on the data disk with Talos' labels; the swaps are made and
    turned on, the raw volumes hold no signature (the encrypted one a LUKS2 header cryptsetup reads and opens
    with the static key). At stop every swap is off. Second start: nothing is formatted again (the swap UUIDs
    and the data written on the raw volumes are kept), and the swaps are on again."""
    node.write_config(*CONFIG)
    async with node.boot() as boot:
        devices = await check_converged(boot)
        uuids = {volume: swap_uuid(device) for volume, device in devices.items()}
        opened_raw = status_of(boot.snapshot, "r-secret").mount_location
        payload = os.urandom(64 * 1024)
        await anyio.to_thread.run_sync(write_at, opened_raw, 1 << 20, payload)  # somebody's data on it
    assert not [entry.device for entry in read_swaps() if entry.device in devices.values()]

    table = read_partition_table(node.data_disk)
    for volume in (*SWAP_VOLUMES, *RAW_VOLUMES):
        partition = table.find(volume)  # labelled s-<name> / r-<name> as in Talos
        assert partition is not None, volume
        assert partition.type_guid == (LINUX_SWAP if volume.startswith("s-") else LINUX_FILESYSTEM_DATA)
    assert blkid_type(node.region("r-plain")) == ""
    assert signatures(node.region("r-plain")) == ""
    assert set(signatures(node.region("r-secret")).split()) == {"crypto_LUKS"}  # its two header copies
    assert blkid_type(node.region("s-plain")) == "swap"
    dump = luks_dump(node.region("r-secret"))
    assert dump["config"]["json_size"]  # cryptsetup reads the header
    assert list(dump["keyslots"]) == ["0"]
    assert cryptsetup_opens(node.region("r-secret"), PASSPHRASE.encode(), slot=0)
    # no mkfs-pending mark left on a volume never formatted (a later mkfs would take the raw data for its own)
    assert "volumed-mkfs-pending" not in [token["type"] for token in dump["tokens"].values()], dump["tokens"]
    assert luks_dump(node.region("s-secret"))["keyslots"]

    plain_raw = node.region("r-plain")
    write_at(str(plain_raw.path), plain_raw.offset + (1 << 20), payload)
    raw_digest = plain_raw.digest()

    async with node.boot() as boot:
        devices = await check_converged(boot)
        assert {volume: swap_uuid(device) for volume, device in devices.items()} == uuids
        opened_raw = status_of(boot.snapshot, "r-secret").mount_location
        assert await anyio.to_thread.run_sync(read_at, opened_raw, 1 << 20, len(payload)) == payload
    assert plain_raw.digest() == raw_digest
    assert not [entry.device for entry in read_swaps() if entry.device in devices.values()]


async def test_a_swap_partition_holding_data_is_refused_and_left_unchanged(node: Node) -> None:
    """The partition s-plain exists and holds somebody's ext4: mkswap never runs over it; the volume fails
    with Talos' mismatch message and not a byte changes."""
    node.write_config(*CONFIG[:3])
    async with node.boot() as boot:
        assert status_of(boot.snapshot, "s-plain").phase.value == "ready", describe(boot.snapshot)
    region = node.region("s-plain")
    mkfs = require_tool("mkfs.ext4")
    with region.device(read_only=False) as device:
        run_tool(mkfs, "-q", "-F", device)
    before = region.digest()
    async with node.boot() as boot:
        status = status_of(boot.snapshot, "s-plain")
        assert status.phase.value == "failed", describe(boot.snapshot)
        assert status.error_message == "filesystem type mismatch: ext4 != swap"
        assert not [s for s in await swap_statuses(boot) if region.path.name in s]
    assert region.digest() == before


async def test_a_swap_volume_dropped_from_the_config_is_swapped_off_and_closed(node: Node) -> None:
    """The running node's config loses its encrypted swap volume: swap goes off on its device, its
    MountStatus goes, and the volume is closed (its mapping released); the plain one stays on. Swap on the
    fuse backend's view works, with a warning that it can deadlock under memory pressure."""
    node.write_config(*CONFIG[:4])
    with structlog.testing.capture_logs() as logs:
        async with node.boot() as boot:
            await boot.wait_for(lambda _s: "s-secret" in boot.subsystem.services.swaps, what="s-secret on")
    warned = [entry for entry in logs if entry["event"] == FUSE_SWAP_WARNING]
    assert [entry["volume"] for entry in warned] == ["s-secret"], warned
    async with node.boot() as boot:
        device = status_of(boot.snapshot, "s-secret").mount_location
        await boot.wait_for(lambda _s: swap_active(device), what=f"swap on {device}")
        node.write_config(*CONFIG[:3])
        services = boot.subsystem.services
        await boot.wait_for(
            lambda _s: "s-secret" not in services.opened and "s-secret" not in services.swaps,
            what="s-secret swapped off and closed",
        )
        assert not swap_active(device)
        pointer = Pointer(BLOCK, MountStatusDefinition.type, "s-secret-volumed")
        assert await boot.subsystem.state.find(pointer) is None
        assert "s-plain" in services.swaps
        assert swap_active(services.swaps["s-plain"])


def test_volumed_get_swapstatuses_of_a_running_node(node: Node) -> None:
    """`volumed run` as an init starts it: `volumed get swapstatuses` lists the swap volume's device with
    Talos' columns; SIGTERM turns swap off before the run ends."""
    node.write_config(*CONFIG[:3])
    socket = str(node.state_dir / "api.sock")

    def get(*argv: str) -> subprocess.CompletedProcess[str]:
        return node.volumed("get", *argv, "--socket", socket, check=False)

    daemon = subprocess.Popen(
        node.run_argv(once=False), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        device = wait_until(
            "s-plain ready", lambda: _ready_device(get("volumestatuses", "s-plain", "-o", "json"))
        )
        table = wait_until("its SwapStatus", lambda: _listed(get("swapstatuses"), device))
        assert table.splitlines()[0].split()[-4:] == ["DEVICE", "SIZE", "USED", "PRIORITY"], table
        shown = json.loads(get("swap", device, "-o", "json").stdout)["spec"]
        assert (shown["device"], shown["type"]) == (device, "partition")
        assert shown["size"] == device_size(device) - 4096
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, stderr
    assert "swap off" in stderr
    assert device not in [entry.device for entry in read_swaps()]


def wait_until(what: str, check: Callable[[], str | None], limit: float = 60) -> str:
    deadline = time.monotonic() + limit
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _ready_device(shown: subprocess.CompletedProcess[str]) -> str | None:
    if shown.returncode != 0:
        return None
    spec = json.loads(shown.stdout)["spec"]
    return spec["mount_location"] if spec["phase"] == "ready" else None


def _listed(shown: subprocess.CompletedProcess[str], device: str) -> str | None:
    return shown.stdout if shown.returncode == 0 and device in shown.stdout.split() else None


async def test_a_raw_volume_grows_with_its_disk_and_a_swap_volume_keeps_its_area(node: Node) -> None:
    """``grow: true`` (Talos' grow, once per start): the data disk image is 64 MiB larger at the second start;
    the encrypted raw volume's partition (last on the disk) and its opened mapping follow it and its data is
    kept; a swap volume with ``grow: true`` is ready with its swap area as it was (never formatted again)."""
    swap = _document("SwapVolumeConfig", "plain", encrypted=False)
    swap["provisioning"]["grow"] = True
    raw = _document("RawVolumeConfig", "secret", encrypted=True)
    raw["provisioning"] = {"diskSelector": {"match": "!system_disk"}, "minSize": "24MiB", "grow": True}
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"), swap, raw)
    payload = os.urandom(64 * 1024)
    async with node.boot() as boot:
        status = status_of(boot.snapshot, "r-secret")
        before = (sfdisk_sizes(node.data_disk)["r-secret"], device_size(status.mount_location))
        assert status.size == before[0]
        await anyio.to_thread.run_sync(write_at, status.mount_location, 1 << 20, payload)
        swap_id = swap_uuid(status_of(boot.snapshot, "s-plain").mount_location)
    with node.data_disk.open("r+b") as image:
        image.truncate(image.seek(0, os.SEEK_END) + GROWTH)

    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        status = status_of(boot.snapshot, "r-secret")
        assert sfdisk_sizes(node.data_disk)["r-secret"] == before[0] + GROWTH
        assert status.size == before[0] + GROWTH
        assert device_size(status.mount_location) == before[1] + GROWTH  # the mapping follows
        assert (
            await anyio.to_thread.run_sync(read_at, status.mount_location, 1 << 20, len(payload)) == payload
        )
        assert status_of(boot.snapshot, "s-plain").phase.value == "ready"
        assert swap_uuid(status_of(boot.snapshot, "s-plain").mount_location) == swap_id


async def test_swap_left_on_by_a_killed_run_is_cleared_by_a_reboot_and_turned_on_again(node: Node) -> None:
    """`volumed run` is killed (SIGKILL) with swap on: the swap stays on, as after a crash; what a reboot
    clears (swap, loops, FUSE servers) is cleared, and the next start turns swap on again on the same swap
    area (never formatted again)."""
    node.write_config(*CONFIG[:4])
    devices = await anyio.to_thread.run_sync(_run_until_swap_on_then_kill, node)
    uuids = {volume: swap_uuid(device) for volume, device in devices.items()}
    assert all(swap_active(device) for device in devices.values())  # a crash leaves swap on
    node.clean_up()  # the reboot
    assert not node.leftovers()
    assert not any(swap_active(device) for device in devices.values())
    async with node.boot() as boot:
        again = await check_converged(boot, raw=False)
        assert {volume: swap_uuid(device) for volume, device in again.items()} == uuids


@pytest.mark.parametrize("encrypted_system", [True, False], ids=["encrypted-system", "plain-system"])
async def test_a_restart_without_reboot_adopts_the_swap_and_raw_volume_a_killed_run_left(
    node: Node, encrypted_system: bool
) -> None:
    """`volumed run` is killed (SIGKILL) with an unencrypted swap volume on and an unencrypted raw volume
    ready, both loop devices over the data image, and started again without a reboot: the new run turns on no
    second swap area over the same bytes (two areas over one partition overwrite each other's pages) and
    attaches no second loop device over either volume; it adopts what the killed run left, and its stop
    leaves no swap and no loop device behind (review22 F2). Unencrypted STATE and EPHEMERAL, mounted from
    loop devices the killed run left, are mounted again from the same ones (a new loop device was "already
    a mount point")."""
    keys = [static_key(0, PASSPHRASE)] if encrypted_system else None
    swap = _document("SwapVolumeConfig", "plain", encrypted=False)
    raw = _document("RawVolumeConfig", "plain", encrypted=False)
    node.write_config(volume_config("STATE", keys), volume_config("EPHEMERAL", keys), swap, raw)
    await anyio.to_thread.run_sync(_run_until_swap_on_then_kill, node, ("s-plain", "r-plain"))
    regions = {volume: node.region(volume) for volume in ("s-plain", "r-plain")}

    def loops_over(volume: str) -> list[str]:
        region = regions[volume]
        return [
            device.path
            for device in loop.list_loop_devices()
            if device.backing_file == os.path.realpath(region.path) and device.offset == region.offset
        ]

    def swap_areas() -> list[str]:
        return [entry.device for entry in read_swaps() if entry.device in loops_over("s-plain")]

    assert len(swap_areas()) == 1  # left on by the killed run
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        await boot.wait_for(lambda _s: swap_active(status_of(_s, "s-plain").mount_location), what="swap on")
        assert swap_areas() == [status_of(boot.snapshot, "s-plain").mount_location], read_swaps()
        assert loops_over("s-plain") == [status_of(boot.snapshot, "s-plain").mount_location]
        assert loops_over("r-plain") == [status_of(boot.snapshot, "r-plain").mount_location]
    assert swap_areas() == []
    assert loops_over("s-plain") == loops_over("r-plain") == []


def _run_until_swap_on_then_kill(node: Node, volumes: tuple[str, ...] = SWAP_VOLUMES) -> dict[str, str]:
    """`volumed run` until the swap volumes among ``volumes`` are on and the others ready, then SIGKILL;
    returns their devices."""
    socket = str(node.state_dir / "api.sock")
    daemon = subprocess.Popen(node.run_argv(once=False), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(volume: str) -> subprocess.CompletedProcess[str]:
        return node.volumed("get", "volumestatuses", volume, "-o", "json", "--socket", socket, check=False)

    try:
        return {
            volume: wait_until(
                f"{volume} on" if volume.startswith("s-") else f"{volume} ready",
                lambda v=volume: (_swapped_on if v.startswith("s-") else _ready_device)(get(v)),
            )
            for volume in volumes
        }
    finally:
        daemon.kill()
        daemon.wait(timeout=60)


def _swapped_on(shown: subprocess.CompletedProcess[str]) -> str | None:
    device = _ready_device(shown)
    return device if device is not None and swap_active(device) else None

"""One boot of a node with the volume types besides STATE/EPHEMERAL/user partitions, on real dm-crypt (backend
``dm``) and the guest's virtio disks: ``/dev/vda`` (Talos layout, unencrypted STATE and EPHEMERAL),
``/dev/vdb`` (GPT: the existing volume's partition, then the raw and swap partitions volumed makes) and
``/dev/vdc`` (blank: the disk volume).

The volumes: ``r-secret`` (RawVolumeConfig, encrypted), ``s-swap`` (SwapVolumeConfig, encrypted), ``u-cache``
(UserVolumeConfig ``volumeType: directory``), ``u-whole`` (``volumeType: disk`` on ``/dev/vdc``, encrypted)
and ``e-archive`` (ExistingVolumeConfig, read-only, over an ext4 this scenario makes on ``/dev/vdb1`` with
sfdisk and mkfs.ext4 on the first boot, before volumed starts).

The subsystem runs in this process until every volume settled; with everything still open, each volume is
checked against the kernel and the real tools (dmsetup, cryptsetup, swapon, blkid, mountinfo), the files are
written (first boot) or read (second boot), and after leaving the subsystem nothing may be mounted, swapped
on or mapped. The raw volume's bytes written through volumed's mapping are then read back through
``cryptsetup open`` of its partition; the existing volume's partition has the same sha256 as before.

Params: ``config`` (the documents), ``passphrase`` (of every encrypted volume's static key), ``first``
(make the existing volume's filesystem; write the files), ``expect`` (the second boot: what the first one
recorded: ``archive_sha256``, ``raw_sha256``, ``swap_uuid``, ``disk_uuid``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio
import yaml

from volumed.controllers import BootPhases, SubsystemOptions, build_subsystem, convergence, running
from volumed.resources import BLOCK, SwapStatusDefinition, VolumePhase
from volumed.runtime import Kind
from volumed.storage.filesystem import find_mount, read_swaps

from ._lifecycle import mapper_nodes, shutdown_state
from ._support import Scenario, run_scenario
from ._volumes import cryptsetup_status, dm_devices, dm_table

if TYPE_CHECKING:
    from volumed.controllers import Convergence
    from volumed.resources import VolumeStatusSpec

ROOT: Final = Path("/run/node")
STATE_DIR: Final = Path("/run/volumed")
CONFIG: Final = Path("/run/volumed-config.yaml")
SETTLE_LIMIT: Final = 180.0
SWAP_LIMIT: Final = 60.0
DATA_DISK: Final = "/dev/vdb"
BLANK_DISK: Final = "/dev/vdc"
ARCHIVE_LABEL: Final = "archive"
ARCHIVE_SIZE_MIB: Final = 48
ARCHIVE_FILE: Final = "archive.txt"
ARCHIVE_TEXT: Final = "made by mkfs.ext4 in the guest before volumed started\n"
RAW_OFFSET: Final = 1 << 20
RAW_SIZE: Final = 64 * 1024
FILE: Final = "kept.txt"
TEXTS: Final = {"u-cache": "on the directory volume\n", "u-whole": "on the disk volume\n"}
LINUX_FILESYSTEM: Final = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
VOLUMES: Final = ("EPHEMERAL", "STATE", "e-archive", "r-secret", "s-swap", "u-cache", "u-whole")


def options() -> SubsystemOptions:
    return SubsystemOptions(
        config=CONFIG,
        backend="dm",
        root=ROOT,
        state_dir=STATE_DIR,
        tpm_boot_phases=BootPhases.OFF,  # no TPM in this guest, no TPM key in the config
        retry_interval=2.0,
        poll_interval=0.5,
        discovery_interval=1.0,
    )


def partition_node(label: str) -> str | None:
    """The node of the partition named ``label`` (GPT name, ``PARTNAME`` in sysfs: no udev here)."""
    for entry in sorted(Path("/sys/class/block").iterdir()):
        uevent = entry / "uevent"
        if (entry / "partition").exists() and f"PARTNAME={label}\n" in uevent.read_text():
            return f"/dev/{entry.name}"
    return None


def wait_for_node(s: Scenario, label: str, limit: float = 15.0) -> str:
    deadline = time.monotonic() + limit
    while True:
        node = partition_node(label)
        if node is not None and Path(node).exists():
            return node
        s.check(time.monotonic() < deadline, f"no partition node for {label!r} after {limit:.0f} s")
        time.sleep(0.2)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_at(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def same_device(a: str, b: str) -> bool:
    try:
        return os.stat(a).st_rdev == os.stat(b).st_rdev
    except OSError:
        return False


def swap_on_and_published(device: str, published: list[str]) -> bool:
    """Whether /proc/swaps lists ``device`` and a SwapStatus (id: the device /proc/swaps names) is
    published for it."""
    listed = any(same_device(entry.device, device) for entry in read_swaps())
    return listed and any(same_device(name, device) for name in published)


def blkid(s: Scenario, device: str, tag: str) -> str:
    """blkid's low-level probe of ``device`` ('' when it finds no such tag)."""
    result = s.run("blkid", "-p", "-o", "value", "-s", tag, device, check=False)
    s.check(result.returncode in (0, 2), f"blkid -p {device} exited {result.returncode}")
    return result.stdout.strip()


def make_existing_filesystem(s: Scenario) -> None:
    """The existing volume: a partition ``archive`` on the data disk (sfdisk), ext4 on it (mkfs.ext4) holding
    one file, all by the real tools before volumed starts."""
    s.step(f"sfdisk: partition {ARCHIVE_LABEL!r} on {DATA_DISK}; mkfs.ext4 on it; one file")
    script = f'size={ARCHIVE_SIZE_MIB}MiB, type={LINUX_FILESYSTEM}, name="{ARCHIVE_LABEL}"\n'
    s.run("sfdisk", "--append", "--no-reread", DATA_DISK, stdin=script.encode())
    s.run("blockdev", "--rereadpt", DATA_DISK)
    node = wait_for_node(s, ARCHIVE_LABEL)
    s.run("mkfs.ext4", "-q", "-L", ARCHIVE_LABEL, node)
    target = Path("/run/mnt/archive")
    target.mkdir(parents=True, exist_ok=True)
    s.run("mount", "-t", "ext4", node, str(target))
    try:
        (target / ARCHIVE_FILE).write_text(ARCHIVE_TEXT)
    finally:
        s.run("umount", str(target))


def write_config(s: Scenario) -> None:
    documents: list[dict[str, Any]] = s.params["config"]
    CONFIG.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    s.note(f"config: {len(documents)} documents")


def describe(snapshot: Convergence) -> str:
    parts = [f"{v}: {st.phase.value} {st.error_message!r}" for v, st in sorted(snapshot.statuses.items())]
    return "; ".join(parts + [f"config: {e}" for e in snapshot.config_errors]) or "no volume statuses"


async def converge(s: Scenario) -> None:
    subsystem = build_subsystem(options())
    s.step("the subsystem runs until every volume is ready, failed or missing")
    started = time.monotonic()
    async with running(subsystem):
        snapshot = await convergence(subsystem.state)
        with anyio.move_on_after(SETTLE_LIMIT):
            # until every volume is ready: a settled state with one missing or failed is noted (a volume
            # may be retried when discovery changes) and waited past, up to the limit
            while not (snapshot.settled and snapshot.ok):
                if snapshot.settled and "settled_not_ready" not in s.results:
                    s.record("settled_not_ready", describe(snapshot))
                await anyio.sleep(0.2)
                snapshot = await convergence(subsystem.state)
        s.record("settle_seconds", round(time.monotonic() - started, 1))
        s.record("statuses", {v: st.model_dump(mode="json") for v, st in sorted(snapshot.statuses.items())})
        s.note(describe(snapshot))
        s.check(snapshot.settled, f"not settled after {SETTLE_LIMIT:.0f} s: {describe(snapshot)}")
        s.check(snapshot.ok, f"not every volume is ready: {describe(snapshot)}")
        s.check(sorted(snapshot.statuses) == list(VOLUMES), f"volumes: {sorted(snapshot.statuses)}")

        s.step("swap: on over the swap volume's dm device (swapon --show, /proc/swaps, SwapStatus)")
        swap = snapshot.statuses["s-swap"].mount_location
        deadline = time.monotonic() + SWAP_LIMIT
        published: list[str] = []
        while time.monotonic() < deadline:
            found = await subsystem.state.list(Kind(BLOCK, SwapStatusDefinition.type))
            published = sorted(resource.id for resource in found)
            if await anyio.to_thread.run_sync(swap_on_and_published, swap, published):
                break
            await anyio.sleep(0.2)
        s.record("swap_statuses", published)
        await anyio.to_thread.run_sync(inspect, s, snapshot)
        s.step("leave the subsystem: swapoff, unmount and close everything")
    s.record("shutdown", shutdown_state(s, ROOT))
    swaps = [entry.device for entry in read_swaps()]
    s.record("swaps_after_stop", swaps)
    s.check(not swaps, f"after shutdown, swap is still on: {swaps}")


def inspect(s: Scenario, snapshot: Convergence) -> None:
    """With everything open: each volume against the kernel and the real tools."""
    statuses = snapshot.statuses
    for volume_id in VOLUMES:
        s.check(statuses[volume_id].phase == VolumePhase.READY, f"{volume_id} is not ready")
    check_swap(s, statuses["s-swap"])
    check_raw(s, statuses["r-secret"])
    check_directory(s, statuses["EPHEMERAL"])
    check_disk(s, statuses["u-whole"])
    check_existing(s, statuses["e-archive"])


def mapping(s: Scenario, volume_id: str, status: VolumeStatusSpec) -> dict[str, Any]:
    """The volume's dm-crypt mapping as dmsetup and cryptsetup see it."""
    name = f"luks2-{volume_id}"
    s.check(
        status.mount_location == f"/dev/mapper/{name}",
        f"{volume_id}: mount_location {status.mount_location!r}, not /dev/mapper/{name}",
    )
    s.check(name in dm_devices(), f"{volume_id}: no dm device {name} (sysfs): {dm_devices()}")
    table = dm_table(s, name)
    active = cryptsetup_status(s, name)
    s.check(active.get("type") == "LUKS2", f"{volume_id}: cryptsetup status type {active.get('type')!r}")
    return {"table": table, "status": active, "location": status.location, "offset": status.offset}


def check_swap(s: Scenario, status: VolumeStatusSpec) -> None:
    view = mapping(s, "s-swap", status)
    device = status.mount_location
    shown = s.run("swapon", "--show=NAME,TYPE", "--noheadings", "--raw").stdout.split("\n")
    names = [line.split()[0] for line in shown if line.strip()]
    s.check(
        any(same_device(name, device) for name in names),
        f"swapon --show lists {names}, not {device} ({os.path.realpath(device)})",
    )
    proc = [entry.device for entry in read_swaps()]
    s.check(any(same_device(name, device) for name in proc), f"/proc/swaps lists {proc}, not {device}")
    published = s.results.get("swap_statuses", [])
    s.record(
        "swap",
        {
            **view,
            "filesystem": status.filesystem,
            # the names the kernel lists (/dev/mapper/NAME here: without udev dmsetup makes that node
            # itself; with udev it is a link to /dev/dm-N, which is then listed), each the mapping or not
            "swapon_show": {name: same_device(name, device) for name in names},
            "proc_swaps": {name: same_device(name, device) for name in proc},
            "swap_statuses": {name: same_device(name, device) for name in published},
            "uuid": blkid(s, device, "UUID"),
            "partition_blkid_type": blkid(s, status.location, "TYPE") if not status.offset else "",
        },
    )


def check_raw(s: Scenario, status: VolumeStatusSpec) -> None:
    view = mapping(s, "r-secret", status)
    device = status.mount_location
    if s.params.get("first"):
        s.step(f"raw: {RAW_SIZE} random bytes written through {device} at {RAW_OFFSET}")
        payload = os.urandom(RAW_SIZE)
        with open(device, "r+b") as handle:
            handle.seek(RAW_OFFSET)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        written = hashlib.sha256(payload).hexdigest()
    else:
        written = s.params["expect"]["raw_sha256"]
    seen = hashlib.sha256(read_at(device, RAW_OFFSET, RAW_SIZE)).hexdigest()
    s.check(seen == written, f"raw: {device} reads {seen}, {written} was written")
    s.record(
        "raw",
        {**view, "filesystem": status.filesystem, "sha256": written, "blkid_type": blkid(s, device, "TYPE")},
    )


def check_directory(s: Scenario, ephemeral: VolumeStatusSpec) -> None:
    s.step("directory volume u-cache: /var/mnt/cache on EPHEMERAL, bind mounted")
    target = ROOT / "var" / "mnt" / "cache"
    info, on = os.stat(target), os.stat(ROOT / "var")
    bind = find_mount(target)
    result: dict[str, Any] = {
        "is_dir": stat.S_ISDIR(info.st_mode),
        "on_ephemeral": info.st_dev == on.st_dev,
        "mode": oct(stat.S_IMODE(info.st_mode)),
        "bind_root": bind.root if bind is not None else None,
        "ephemeral_location": ephemeral.location,
    }
    result["file"] = keep_file(s, "u-cache", target)
    s.record("directory", result)
    var = os.path.realpath(ROOT / "var")
    with open("/proc/mounts", encoding="utf-8") as mounts:  # the kernel's word, not our mountinfo parser
        lines = [line.split() for line in mounts]
    s.record("ephemeral_mount", [(fields[2], fields[3]) for fields in lines if fields[1] == var])


def keep_file(s: Scenario, volume_id: str, target: Path) -> str | None:
    """Write the volume's file (first boot), and read it back."""
    path = target / FILE
    if s.params.get("first"):
        with path.open("w") as handle:
            handle.write(TEXTS[volume_id])
            handle.flush()
            os.fsync(handle.fileno())
        s.note(f"wrote {path}")
    found = path.read_text() if path.exists() else None
    s.check(found == TEXTS[volume_id], f"{path} reads {found!r}, not {TEXTS[volume_id]!r}")
    return found


def check_disk(s: Scenario, status: VolumeStatusSpec) -> None:
    s.step(f"disk volume u-whole: LUKS2 on the whole {BLANK_DISK}, xfs mounted at /var/mnt/whole")
    view = mapping(s, "u-whole", status)
    target = ROOT / "var" / "mnt" / "whole"
    mounted = find_mount(target)
    s.check(mounted is not None, f"{target} is not mounted")
    assert mounted is not None
    s.check(
        os.makedev(mounted.major, mounted.minor) == os.stat(status.mount_location).st_rdev,
        f"{target} is mounted from {mounted.source}, not {status.mount_location}",
    )
    s.record(
        "disk",
        {
            **view,
            "filesystem": status.filesystem,
            "partition_index": status.partition_index,
            "fstype": mounted.fstype,
            "blkid_type": blkid(s, BLANK_DISK, "TYPE"),
            "blkid_pttype": blkid(s, BLANK_DISK, "PTTYPE"),
            "uuid": blkid(s, BLANK_DISK, "UUID"),
            "file": keep_file(s, "u-whole", target),
        },
    )


def check_existing(s: Scenario, status: VolumeStatusSpec) -> None:
    s.step("existing volume e-archive: the guest's ext4 mounted read-only at /var/mnt/archive")
    target = ROOT / "var" / "mnt" / "archive"
    mounted = find_mount(target)
    s.check(mounted is not None, f"{target} is not mounted")
    assert mounted is not None
    text = (target / ARCHIVE_FILE).read_text()
    try:
        (target / "written-by-the-scenario").write_text("must not be written")
        refused = 0
    except OSError as error:
        refused = error.errno or 0
    s.record(
        "existing",
        {
            "location": status.location,
            "offset": status.offset,
            "filesystem": status.filesystem,
            "source_is_location": os.makedev(mounted.major, mounted.minor)
            == os.stat(status.location).st_rdev,
            "fstype": mounted.fstype,
            "options": list(mounted.options),
            "text": text,
            "write_refused_with": errno.errorcode.get(refused, str(refused)),
        },
    )


def raw_through_cryptsetup(s: Scenario) -> None:
    """The raw volume's partition opened by cryptsetup (volumed's mapping closed): the bytes are there."""
    if partition_node("r-secret") is None:  # the kernel was not told of the partition while volumed ran
        s.record("raw_partition_reread_after_stop", True)
        s.run("blockdev", "--rereadpt", DATA_DISK)
    node = wait_for_node(s, "r-secret")
    s.step(f"cryptsetup open {node}: the raw volume's bytes as cryptsetup's own mapping shows them")
    passphrase = s.params["passphrase"].encode()
    s.run("cryptsetup", "open", "--readonly", "--key-file=-", node, "raw-check", stdin=passphrase)
    try:
        seen = hashlib.sha256(read_at("/dev/mapper/raw-check", RAW_OFFSET, RAW_SIZE)).hexdigest()
    finally:
        s.run("cryptsetup", "close", "raw-check")
    s.record("raw_through_cryptsetup", seen)
    s.check(
        seen == s.results["raw"]["sha256"],
        f"cryptsetup's mapping of {node} reads {seen}, volumed's mapping wrote {s.results['raw']['sha256']}",
    )
    s.check(dm_devices() == {} and mapper_nodes() == [], "cryptsetup close left a dm device or a node")


def main(s: Scenario) -> None:
    s.step("a fresh kernel: device-mapper, three virtio disks, no dm device, no swap")
    s.check(stat.S_ISCHR(Path("/dev/mapper/control").stat().st_mode), "/dev/mapper/control is missing")
    for disk in ("/dev/vda", DATA_DISK, BLANK_DISK):
        s.check(stat.S_ISBLK(Path(disk).stat().st_mode), f"{disk} is not a block device")
    s.check(dm_devices() == {} and mapper_nodes() == [], "dm devices or mapper nodes exist at boot")
    s.check(not read_swaps(), "swap is on at boot")
    if s.params.get("first"):
        make_existing_filesystem(s)
    archive = wait_for_node(s, ARCHIVE_LABEL)
    s.record("archive_node", archive)
    s.record("archive_sha256_before", sha256_of(archive))
    write_config(s)
    STATE_DIR.mkdir(mode=0o700, exist_ok=True)

    anyio.run(converge, s)

    raw_through_cryptsetup(s)
    s.step("existing volume: its partition is byte for byte as before volumed started")
    after = sha256_of(archive)
    s.record("archive_sha256_after", after)
    s.check(after == s.results["archive_sha256_before"], f"{archive} changed while volumed ran")


if __name__ == "__main__":
    run_scenario(main)

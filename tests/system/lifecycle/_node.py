"""A simulated node for the lifecycle system tests: disk images, a machine config, boots of the subsystem
(in process, or `volumed run` as a subprocess), what cryptsetup says about the disks, and a teardown that
leaves nothing behind (mounts, loop devices, FUSE servers) even when a test fails.

A "reboot" is: stop the subsystem (or kill it and clean up what a reboot would clear: mounts, loop devices,
FUSE servers), then start a new one on the same disk images.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio
import yaml

from tests._tools import require_root, require_tool
from volumed.controllers import (
    Convergence,
    Subsystem,
    SubsystemOptions,
    build_subsystem,
    convergence,
    running,
    wait_settled,
)
from volumed.resources import BLOCK, KeySlotStatusDefinition, VolumePhase
from volumed.runtime import NotFoundError, Pointer
from volumed.storage import disklayout, loop
from volumed.storage.filesystem import read_mounts, read_swaps
from volumed.storage.gpt import new_table, read_partition_table, write_partition_table

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Sequence

    from volumed.resources import KeySlotStatusSpec, VolumeStatusSpec

MIB: Final = 1 << 20
SYSTEM_DISK_SIZE: Final = 1024 * MIB
DATA_DISK_SIZE: Final = 256 * MIB
# argon2id at its minimum cost (microseconds): a config may not ask for pbkdf2, which Talos cannot open.
FAST_PBKDF: Final = {"type": "argon2id", "memory": 32, "iterations": 4, "parallel": 1}
FUSE_SERVER_MODULE: Final = "volumed.storage.activation._fuse_server"
VOLUMED: Final = str(Path(sys.executable).parent / "volumed")
SETTLE_TIMEOUT: Final = 90.0
MOUNT_TARGETS: Final = {"STATE": "system/state", "EPHEMERAL": "var"}


# -- machine config documents ---------------------------------------------------------------------------


def static_key(slot: int, passphrase: str, *, lock: bool = False) -> dict[str, Any]:
    key: dict[str, Any] = {"slot": slot, "static": {"passphrase": passphrase}}
    if lock:
        key["lockToSTATE"] = True
    return key


def node_id_key(slot: int, *, lock: bool = False) -> dict[str, Any]:
    key: dict[str, Any] = {"slot": slot, "nodeID": {}}
    if lock:
        key["lockToSTATE"] = True
    return key


def kms_key(slot: int, endpoint: str) -> dict[str, Any]:
    return {"slot": slot, "kms": {"endpoint": endpoint}}


def tpm_key(slot: int, pcrs: Sequence[int] = (7,)) -> dict[str, Any]:
    # volumedPcrOnly: these nodes boot without a signed UKI (no /.extra files, PCR 11 unmeasured)
    return {"slot": slot, "tpm": {"options": {"pcrs": list(pcrs), "volumedPcrOnly": True}}}


def _encryption(keys: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"provider": "luks2", "keys": list(keys), "pbkdf": dict(FAST_PBKDF)}


def volume_config(name: str, keys: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A VolumeConfig document for STATE or EPHEMERAL (unencrypted without keys)."""
    document: dict[str, Any] = {"apiVersion": "v1alpha1", "kind": "VolumeConfig", "name": name}
    if keys:
        document["encryption"] = _encryption(keys)
    return document


def user_volume_config(
    name: str,
    keys: Sequence[dict[str, Any]] | None = None,
    *,
    selector: str = "!system_disk",
    min_size: str = "64MiB",
    filesystem: str = "ext4",
) -> dict[str, Any]:
    """A UserVolumeConfig document: a partition made on the disk the CEL selector picks."""
    document: dict[str, Any] = {
        "apiVersion": "v1alpha1",
        "kind": "UserVolumeConfig",
        "name": name,
        "provisioning": {"diskSelector": {"match": selector}, "minSize": min_size, "grow": True},
        "filesystem": {"type": filesystem},
    }
    if keys:
        document["encryption"] = _encryption(keys)
    return document


def write_config(path: Path, *documents: dict[str, Any]) -> Path:
    """Write the documents as one YAML stream, atomically (a polling ConfigLoader never sees half a file)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    os.replace(temporary, path)
    return path


# -- regions, cryptsetup -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A partition of a disk image: the image and the byte range."""

    path: Path
    offset: int
    size: int

    def digest(self) -> str:
        """SHA-256 of every byte of the partition ("data untouched" means this did not change)."""
        digest = hashlib.sha256()
        with self.path.open("rb") as image:
            image.seek(self.offset)
            remaining = self.size
            while remaining:
                chunk = image.read(min(remaining, 8 * MIB))
                if not chunk:
                    break
                digest.update(chunk)
                remaining -= len(chunk)
        return digest.hexdigest()

    @contextlib.contextmanager
    def device(self, *, read_only: bool = True) -> Iterator[str]:
        """The partition as a loop device (this kernel makes no partition nodes for loop devices)."""
        with loop.attached(
            self.path, offset=self.offset, size_limit=self.size, read_only=read_only
        ) as device:
            yield device.path


def run_tool(
    *argv: str | Path, input: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in argv], input=input.decode() if input is not None else None,
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, argv))} exited {result.returncode}: {result.stderr.strip()}"
        )
    return result


def luks_dump(region: Region) -> dict[str, Any]:
    """`cryptsetup luksDump --dump-json-metadata` of the partition (cryptsetup, not our parser)."""
    cryptsetup = require_tool("cryptsetup")
    with region.device() as device:
        result = run_tool(cryptsetup, "luksDump", "--dump-json-metadata", device)
    metadata: dict[str, Any] = json.loads(result.stdout)
    return metadata


def luks_slots(region: Region) -> list[int]:
    """The key slots cryptsetup sees in the partition's LUKS2 header."""
    return sorted(int(slot) for slot in luks_dump(region)["keyslots"])


def cryptsetup_opens(region: Region, passphrase: bytes, *, slot: int | None = None) -> bool:
    """Whether cryptsetup accepts ``passphrase`` (for ``slot``) on the partition (open --test-passphrase)."""
    cryptsetup = require_tool("cryptsetup")
    argv: list[str] = [cryptsetup, "open", "--test-passphrase", "--key-file", "-"]
    if slot is not None:
        argv += ["--key-slot", str(slot)]
    with region.device() as device:
        result = subprocess.run(
            [*argv, device], input=passphrase, capture_output=True, check=False, timeout=60
        )
    if result.returncode not in (0, 2):
        raise AssertionError(f"cryptsetup open --test-passphrase: {result.stderr.decode(errors='replace')}")
    return result.returncode == 0


# -- cleanup ---------------------------------------------------------------------------------------------


def _under(path: str, directory: Path) -> bool:
    return path == str(directory) or path.startswith(f"{directory}/")


def _fuse_server_pids(state_dir: Path) -> list[int]:
    pids: list[int] = []
    for state_file in (state_dir / "fuse").glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            pid = json.loads(state_file.read_text()).get("pid")
            if isinstance(pid, int) and _is_fuse_server(pid):
                pids.append(pid)
    return pids


def _is_fuse_server(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X") and FUSE_SERVER_MODULE.encode() in argv


def leftovers(workdir: Path, state_dir: Path) -> list[str]:
    """Mounts, loop devices and FUSE servers of this node that are still there."""
    found = [f"mount {m.target}" for m in read_mounts() if _under(m.target, workdir)]
    found += [
        f"loop {d.path} -> {d.backing_file}"
        for d in loop.list_loop_devices()
        if _under(d.backing_file, workdir)
    ]
    found += [f"fuse server pid {pid}" for pid in _fuse_server_pids(state_dir)]
    return found


def _stop_pid(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _is_fuse_server(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _is_fuse_server(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.02)


def clean_up(workdir: Path, state_dir: Path) -> None:
    """What a reboot clears: swap on our loops, mounts (deepest first), loop devices, FUSE servers (by PID)
    and FUSE mounts."""
    ours = {device.path for device in loop.list_loop_devices() if _under(device.backing_file, workdir)}
    for entry in read_swaps():  # a loop device with swap on it cannot be detached
        if entry.device in ours:
            subprocess.run([require_tool("swapoff"), entry.device], capture_output=True, check=False)
    umount = require_tool("umount")
    root_mounts = sorted(
        (m.target for m in read_mounts() if _under(m.target, workdir) and not _under(m.target, state_dir)),
        key=len, reverse=True,
    )  # fmt: skip
    for target in root_mounts:
        if subprocess.run([umount, target], capture_output=True, check=False).returncode != 0:
            subprocess.run([umount, "--lazy", target], capture_output=True, check=False)
    for _ in range(2):
        for device in loop.list_loop_devices():
            if _under(device.backing_file, workdir):
                with contextlib.suppress(OSError):
                    loop.detach(device)
        for mount in sorted(
            (m.target for m in read_mounts() if _under(m.target, workdir)), key=len, reverse=True
        ):
            if subprocess.run([umount, mount], capture_output=True, check=False).returncode != 0:
                subprocess.run([umount, "--lazy", mount], capture_output=True, check=False)
        for pid in _fuse_server_pids(state_dir):
            _stop_pid(pid)
        if not leftovers(workdir, state_dir):
            return


# -- the node --------------------------------------------------------------------------------------------


async def _slots_synced(subsystem: Subsystem, snapshot: Convergence) -> bool:
    """Whether the KeySlotSyncer has synced every open volume to the keys it was opened with, and the
    VolumeStatus shows the outcome (its failed syncs)."""
    for volume_id, status in snapshot.statuses.items():
        opened = subsystem.services.opened.get(volume_id)
        if status.phase != VolumePhase.READY or not status.encryption_provider or opened is None:
            continue
        try:
            synced = await subsystem.state.get(Pointer(BLOCK, KeySlotStatusDefinition.type, volume_id))
        except NotFoundError:
            return False
        spec: KeySlotStatusSpec = synced.spec
        if not opened.keys_digest or spec.keys_digest != opened.keys_digest:
            return False
        if spec.failed_syncs != status.encryption_failed_syncs:
            return False
    return True


async def wait_settled_and_synced(subsystem: Subsystem) -> Convergence:
    """`wait_settled`, and then until the VolumeStatus of every open volume shows its key-slot sync.

    `wait_settled` waits until a KeySlotStatus exists; the VolumeFormatter copies its failed syncs into the
    VolumeStatus one reconcile later, and the tests assert on the VolumeStatus.
    """
    while True:
        snapshot = await wait_settled(subsystem.state, poll=0.1)
        if await _slots_synced(subsystem, snapshot):
            return snapshot
        await anyio.sleep(0.1)


@dataclass
class Booted:
    """A running subsystem on the node, and the snapshot it settled at."""

    node: Node
    subsystem: Subsystem
    settled: Convergence | None

    @property
    def snapshot(self) -> Convergence:
        assert self.settled is not None, "this boot was not waited on"
        return self.settled

    async def now(self) -> Convergence:
        return await convergence(self.subsystem.state)

    async def wait_for(
        self, predicate: Callable[[Convergence], bool], *, limit: float = 30.0, what: str = "a condition"
    ) -> Convergence:
        """Poll the convergence until ``predicate`` holds (fails the test with the statuses otherwise)."""
        snapshot = await self.now()
        with anyio.move_on_after(limit):
            while not predicate(snapshot):
                await anyio.sleep(0.1)
                snapshot = await self.now()
            return snapshot
        raise AssertionError(f"timed out after {limit} s waiting for {what}: {describe(snapshot)}")


def describe(snapshot: Convergence) -> str:
    """The phases and errors of every volume, for assertion messages."""
    parts = [f"{v}: {s.phase.value} {s.error_message!r}" for v, s in sorted(snapshot.statuses.items())]
    if snapshot.config_errors:
        parts.append(f"config errors: {snapshot.config_errors}")
    return "; ".join(parts) or "no volume statuses"


def phases(snapshot: Convergence) -> dict[str, str]:
    return {volume: status.phase.value for volume, status in snapshot.statuses.items()}


@dataclass
class Node:
    """Two disk images (the system disk with the Talos layout, an empty data disk), a config path and a
    node UUID: what survives a reboot."""

    workdir: Path
    node_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        self.system_disk = self.workdir / "system.img"
        self.data_disk = self.workdir / "data.img"
        self.config = self.workdir / "config.yaml"
        self.root = self.workdir / "root"
        self.state_dir = self.workdir / "run"

    @classmethod
    def create(cls, workdir: Path) -> Node:
        require_root()
        for tool in ("mkfs.xfs", "mkfs.ext4", "mount", "umount", "cryptsetup", "losetup"):
            require_tool(tool)
        node = cls(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        disklayout.create_disk_image(node.system_disk, SYSTEM_DISK_SIZE)
        with node.data_disk.open("wb") as image:
            image.truncate(DATA_DISK_SIZE)
        write_partition_table(node.data_disk, new_table(DATA_DISK_SIZE))
        node.state_dir.mkdir(mode=0o700)
        return node

    def write_config(self, *documents: dict[str, Any]) -> Path:
        return write_config(self.config, *documents)

    @property
    def disks(self) -> list[str]:
        return [str(self.system_disk), str(self.data_disk)]

    def region(self, label: str) -> Region:
        """The partition named ``label`` on either disk."""
        for disk in (self.system_disk, self.data_disk):
            table = read_partition_table(disk)
            partition = table.find(label)
            if partition is not None:
                ss = table.sector_size
                return Region(disk, partition.offset(ss), partition.size(ss))
        raise AssertionError(f"no partition labelled {label} on {self.system_disk} or {self.data_disk}")

    def target(self, volume_id: str) -> Path:
        """Where the volume is mounted on the host (under the node's root)."""
        if volume_id.startswith("u-"):
            return self.root / "var" / "mnt" / volume_id[2:]
        return self.root / MOUNT_TARGETS[volume_id]

    def options(self, **changes: Any) -> SubsystemOptions:
        options = SubsystemOptions(
            config=self.config,
            disks=self.disks,
            backend="fuse",
            root=self.root,
            state_dir=self.state_dir,
            node_uuid=self.node_uuid,
            retry_interval=0.5,
            poll_interval=0.2,
            discovery_interval=1.0,
        )
        return replace(options, **changes)

    @asynccontextmanager
    async def boot(
        self, *, settle: bool = True, limit: float = SETTLE_TIMEOUT, **changes: Any
    ) -> AsyncIterator[Booted]:
        """Run the subsystem; wait until every volume settled (unless ``settle`` is false).

        On exit the subsystem stops (unmounts and closes everything) and nothing of it may be left.
        """
        subsystem = build_subsystem(self.options(**changes))
        async with running(subsystem):
            snapshot = None
            if settle:
                with anyio.move_on_after(limit):
                    snapshot = await wait_settled_and_synced(subsystem)
                if snapshot is None:
                    raise AssertionError(
                        f"not settled after {limit} s: {describe(await convergence(subsystem.state))}"
                    )
            yield Booted(self, subsystem, snapshot)
        left = leftovers(self.workdir, self.state_dir)
        assert not left, f"the subsystem left these behind at shutdown: {left}"

    def run_argv(
        self,
        *,
        config: Path | None = None,
        retry_interval: float = 0.5,
        timeout: float = 60.0,
        once: bool = True,
    ) -> list[str]:
        """`volumed run` for this node, as an init would start it (``--once`` unless ``once`` is false)."""
        return [
            VOLUMED, "run", "--config", str(config or self.config), "--disk", str(self.system_disk),
            "--disk", str(self.data_disk), *(["--once"] if once else []), "--backend", "fuse",
            "--root", str(self.root),
            "--state-dir", str(self.state_dir), "--node-uuid", self.node_uuid,
            "--retry-interval", str(retry_interval), "--timeout", str(timeout),
        ]  # fmt: skip

    def volumed(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a `volumed` command (wipe, apply-config, meta, ...)."""
        return run_tool(VOLUMED, *args, check=check)

    def clean_up(self) -> None:
        clean_up(self.workdir, self.state_dir)

    def leftovers(self) -> list[str]:
        return leftovers(self.workdir, self.state_dir)


def status_of(snapshot: Convergence, volume_id: str) -> VolumeStatusSpec:
    assert volume_id in snapshot.statuses, f"no status for {volume_id}: {describe(snapshot)}"
    return snapshot.statuses[volume_id]

"""One boot of a node whose volume subsystem is volumed, in the guest: real dm-crypt (backend ``dm``), the TPM
through ``/dev/tpmrm0``, the node's block devices found through sysfs (``/dev/vda`` with the Talos layout, an
empty ``/dev/vdb``).

The subsystem runs in this process (as `volumed run` does; ``cli_first`` runs `volumed run --once` itself
first) until every volume settled. Then, with everything still mounted, each volume is checked against
cryptsetup (``status`` of its mapping, ``luksDump`` of its partition), the scenario's file is written or read
on each mount, and the key-slot KDF runs are counted per volume. After leaving the subsystem nothing may be
mounted, no dm device may exist and /dev/mapper must hold only ``control``.

Params: ``config`` (the machine config documents; a UserVolumeConfig filesystem type ``auto`` becomes xfs when
the kernel has it, else ext4), ``node_uuid``, ``write`` / ``expect_files`` ({volume id: text} of ``FILE``),
``extend_pcr7`` (extend PCR 7 before the subsystem starts), ``cli_first``, ``conflict_check`` (activate an
open volume's mapping name over another partition: must be refused), ``passphrases`` (``[volume id, slot,
passphrase, accepted]``: whether cryptsetup accepts the passphrase for that key slot).

Results include each mapping's ``dmsetup table`` (``dm_tables``) and EPHEMERAL's size as the GPT, the kernel's
partition, its mapping and its xfs see it (``ephemeral_sizes``), for the dm-crypt flags and grow.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio
import yaml

from volumed.controllers import SubsystemOptions, build_subsystem, convergence, running
from volumed.resources import BLOCK, MountStatusDefinition, VolumePhase
from volumed.runtime import Kind
from volumed.storage.activation import ActivationConflictError, DmActivator
from volumed.storage.luks2 import Luks2Volume

from ._lifecycle import (
    KdfCounter,
    cryptsetup_view,
    dump_statuses,
    header_device,
    kdf_runs_per_volume,
    mapper_nodes,
    shutdown_state,
)
from ._support import Scenario, run_scenario
from ._tpm import TCTI, read_pcr7, require_tpm
from ._volumes import data_segment, dm_devices, dm_table, filesystem_type

if TYPE_CHECKING:
    from volumed.controllers import Convergence
    from volumed.resources import MountStatusSpec, VolumeStatusSpec

ROOT: Final = Path("/run/node")
STATE_DIR: Final = Path("/run/volumed")
CONFIG: Final = Path("/run/volumed-config.yaml")
FILE: Final = "lifecycle.txt"
SETTLE_LIMIT: Final = 150.0
VOLUMED: Final = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "volumed"


def write_config(s: Scenario) -> None:
    documents: list[dict[str, Any]] = s.params["config"]
    fstype = filesystem_type()
    for document in documents:
        filesystem = document.get("filesystem")
        if isinstance(filesystem, dict) and filesystem.get("type") == "auto":
            filesystem["type"] = fstype
    CONFIG.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    s.note(f"config: {len(documents)} documents, user volumes on {fstype}")


def options() -> SubsystemOptions:
    return SubsystemOptions(
        config=CONFIG,
        backend="dm",
        root=ROOT,
        state_dir=STATE_DIR,
        tcti=TCTI,
        retry_interval=2.0,
        poll_interval=0.5,
        discovery_interval=1.0,
    )


def describe(snapshot: Convergence) -> str:
    parts = [f"{v}: {st.phase.value} {st.error_message!r}" for v, st in sorted(snapshot.statuses.items())]
    return "; ".join(parts + [f"config: {e}" for e in snapshot.config_errors]) or "no volume statuses"


def run_cli_once(s: Scenario, node_uuid: str) -> None:
    """`volumed run --once` as a node's init would start it; it exits when settled and closes everything."""
    s.step("volumed run --once --backend dm (the CLI, its own process)")
    started = time.monotonic()
    result = s.run(
        str(VOLUMED), "run", "--config", str(CONFIG), "--once", "--backend", "dm",
        "--root", str(ROOT), "--state-dir", str(STATE_DIR), "--node-uuid", node_uuid,
        "--tpm-tcti", TCTI, "--retry-interval", "2", "--timeout", str(SETTLE_LIMIT),
        check=False,
    )  # fmt: skip
    s.record("cli_exit", result.returncode)
    s.record("cli_seconds", round(time.monotonic() - started, 1))
    s.check(result.returncode == 0, f"volumed run --once exited {result.returncode}")
    s.record("cli_shutdown", shutdown_state(s, ROOT))


async def converge(s: Scenario, counter: KdfCounter) -> None:
    node_uuid: str = s.params["node_uuid"]
    subsystem = build_subsystem(replace(options(), node_uuid=node_uuid))
    s.step("the subsystem runs until every volume is ready, failed or missing")
    started = time.monotonic()
    async with running(subsystem):
        snapshot = await convergence(subsystem.state)
        with anyio.move_on_after(SETTLE_LIMIT):
            while not snapshot.settled:
                await anyio.sleep(0.2)
                snapshot = await convergence(subsystem.state)
        s.record("settle_seconds", round(time.monotonic() - started, 1))
        s.record("statuses", dict(dump_statuses(snapshot.statuses)))
        s.note(describe(snapshot))
        s.check(snapshot.settled, f"not settled after {SETTLE_LIMIT:.0f} s: {describe(snapshot)}")
        s.check(snapshot.ok, f"not every volume is ready: {describe(snapshot)}")
        mounts: list[Any] = await subsystem.state.list(Kind(BLOCK, MountStatusDefinition.type))
        targets = {}
        for mount in mounts:
            spec: MountStatusSpec = mount.spec
            targets[spec.volume_id] = spec.target
        s.record("mounts", targets)
        await anyio.to_thread.run_sync(inspect, s, snapshot, targets, counter)
        s.step("leave the subsystem: unmount and close everything")
    s.record("shutdown", shutdown_state(s, ROOT))


def inspect(s: Scenario, snapshot: Convergence, targets: dict[str, str], counter: KdfCounter) -> None:
    """With everything mounted: cryptsetup's view, the files, the KDF runs, the same-name conflict."""
    s.step("cryptsetup status / luksDump agree with each VolumeStatus")
    views = {}
    for volume_id, status in sorted(snapshot.statuses.items()):
        s.check(status.phase == VolumePhase.READY, f"{volume_id} is {status.phase.value}")
        s.check(volume_id in targets, f"{volume_id} is not mounted (mounts: {targets})")
        views[volume_id] = cryptsetup_view(s, volume_id, status)
    s.record("cryptsetup", views)

    s.step("dmsetup table of each mapping (dm-crypt flags); EPHEMERAL's sizes (grow)")
    s.record("dm_tables", {volume_id: dm_table(s, f"luks2-{volume_id}") for volume_id in sorted(targets)})
    s.record("ephemeral_sizes", ephemeral_sizes(s, snapshot.statuses["EPHEMERAL"], targets["EPHEMERAL"]))

    s.step(f"files: {FILE} on each mounted volume")
    for volume_id, text in s.params.get("write", {}).items():
        path = Path(targets[volume_id]) / FILE
        with path.open("w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        s.note(f"wrote {path}")
    read = {}
    for volume_id, text in s.params.get("expect_files", {}).items():
        path = Path(targets[volume_id]) / FILE
        read[volume_id] = found = path.read_text() if path.exists() else None
        s.check(found == text, f"{path} reads {found!r}, not {text!r}")
        s.note(f"read {path}: as written")
    s.record("files_read", read)

    s.step("key-slot KDF runs per volume (our LUKS2 library in this process)")
    runs = kdf_runs_per_volume(counter.take(), snapshot.statuses)
    s.note(f"KDF runs: {runs}")
    s.record("kdf_runs", runs)

    for volume_id, slot, passphrase, accepted in s.params.get("passphrases", []):
        s.step(
            f"cryptsetup on {volume_id} slot {slot}: the passphrase is {'' if accepted else 'not '}accepted"
        )
        with header_device(snapshot.statuses[volume_id]) as header:
            result = s.run(
                "cryptsetup", "open", "--test-passphrase", "--key-slot", str(slot), "--key-file=-", header,
                stdin=passphrase.encode(), check=False,
            )  # fmt: skip
        s.check(result.returncode in (0, 2), f"cryptsetup open --test-passphrase exited {result.returncode}")
        s.check(
            (result.returncode == 0) == accepted,
            f"{volume_id} slot {slot}: cryptsetup {'refused' if accepted else 'accepted'} the passphrase",
        )

    if s.params.get("conflict_check"):
        s.step("the mapping name of an open volume over another partition: refused")
        volume_id, other = "EPHEMERAL", snapshot.statuses["STATE"].location
        with Luks2Volume.open(other, read_only=True) as volume:
            segment = data_segment(volume, other)
        before = dm_devices()
        try:
            returned = DmActivator().activate(f"luks2-{volume_id}", segment, bytes(64))
        except ActivationConflictError as exc:
            s.note(f"ActivationConflictError: {exc}")
            s.record("conflict", str(exc))
        else:
            raise AssertionError(f"activate(luks2-{volume_id}) over {other} returned {returned}")
        s.check(dm_devices() == before, "the refused activation changed the dm devices")


def ephemeral_sizes(s: Scenario, status: VolumeStatusSpec, target: str) -> dict[str, int]:
    """EPHEMERAL's size in bytes as each layer sees it: the GPT on disk (``sfdisk --json``), the kernel's
    partition (sysfs), the dm mapping (``blockdev``) and the mounted xfs (``xfs_info`` data blocks)."""
    node = status.location
    disk = f"/dev/{(Path('/sys/class/block') / Path(node).name).resolve().parent.name}"
    table = json.loads(s.run("sfdisk", "--json", disk).stdout)["partitiontable"]
    entry = next((p for p in table["partitions"] if p["node"] == node), None)
    s.check(entry is not None, f"sfdisk --json {disk} has no {node}: {table['partitions']}")
    assert entry is not None
    sysfs = Path("/sys/class/block") / Path(node).name / "size"
    data = re.search(r"^data\s+=\s+bsize=(\d+)\s+blocks=(\d+)", s.run("xfs_info", target).stdout, re.M)
    s.check(data is not None, f"xfs_info {target}: no data section")
    assert data is not None
    blockdev = s.run("blockdev", "--getsize64", status.mount_location).stdout
    return {
        "gpt": int(entry["size"]) * int(table.get("sectorsize", 512)),
        "disk": int(s.run("blockdev", "--getsize64", disk).stdout),
        "kernel_partition": int(sysfs.read_text()) * 512,
        "mapping": int(blockdev),
        "xfs": int(data[1]) * int(data[2]),
        "status": status.size,
    }


def main(s: Scenario) -> None:
    s.step("a fresh kernel: device-mapper, the disks, no dm device yet")
    s.check(stat.S_ISCHR(Path("/dev/mapper/control").stat().st_mode), "/dev/mapper/control is missing")
    for disk in ("/dev/vda", "/dev/vdb"):
        s.check(stat.S_ISBLK(Path(disk).stat().st_mode), f"{disk} is not a block device")
    s.check(dm_devices() == {} and mapper_nodes() == [], "dm devices or mapper nodes exist at boot")
    require_tpm(s)
    write_config(s)
    STATE_DIR.mkdir(mode=0o700, exist_ok=True)

    pcr7 = read_pcr7()
    s.record("pcr7_at_boot", pcr7)
    if s.params.get("extend_pcr7"):
        s.step("extend PCR 7 before the subsystem starts (a changed SecureBoot state)")
        event = hashlib.sha256(b"kernel tier: SecureBoot db changed").hexdigest()
        s.run("tpm2_pcrextend", "-T", TCTI, f"7:sha256={event}")
        s.check(read_pcr7() != pcr7, "PCR 7 did not change")
        s.record("pcr7_extended", read_pcr7())

    if s.params.get("cli_first"):
        run_cli_once(s, s.params["node_uuid"])

    counter = KdfCounter()
    counter.install()
    anyio.run(converge, s, counter)


if __name__ == "__main__":
    run_scenario(main)

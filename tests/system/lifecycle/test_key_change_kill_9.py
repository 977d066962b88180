"""`volumed run` killed at every write of a key change made by key-slot sync: the config changes the
passphrase of the only key slot of the open EPHEMERAL volume, and the run is stopped (os._exit at a fault
hook, as kill -9 would) after its 1st, 2nd, ... header or key-area write. After each "power cut" cryptsetup
must open the volume with the old or the new key, and at the end the node boots with the new one. The new key
is a static passphrase, or a TPM-sealed key (swtpm) whose talos-tpm2 token must go in with it.

Key-slot sync used to kill the slot, run the KDF, then add it again: a cut in between left a volume no
passphrase opens (issue 15, item 2). The crash points come from ``volumed.storage.luks2.faults``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import TYPE_CHECKING

import anyio.to_thread
import pytest

from tests._swtpm import Swtpm
from tests.system.lifecycle._node import (
    cryptsetup_opens,
    describe,
    luks_dump,
    luks_slots,
    node_id_key,
    static_key,
    status_of,
    tpm_key,
    volume_config,
)
from volumed.keys.tpm import TPMKeyProvider
from volumed.storage.luks2 import faults

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any

    from tests.system.lifecycle._node import Node, Region

OLD, NEW = "old passphrase", "new passphrase"
STATE = volume_config("STATE", [node_id_key(0)])
MAX_WRITES = 32
STEP_LIMIT = 90.0
FIRMWARE = b"SecureBoot db: vendor keys v1"


@pytest.fixture
def tpm(tmp_path: Path) -> Iterator[Swtpm]:
    with Swtpm.start(tmp_path / "tpm") as started:
        started.pcr_extend(7, FIRMWARE)  # an all-zero PCR 7 is refused for sealing, as in Talos
        yield started


def new_key(kind: str) -> dict[str, Any]:
    return static_key(0, NEW) if kind == "static" else tpm_key(0, pcrs=[7])


async def new_key_opens(region: Region, kind: str, tpm: Swtpm) -> bool:
    """Whether slot 0 opens with its new key: the static passphrase, or the TPM's unsealed token."""
    if kind == "static":
        return cryptsetup_opens(region, NEW.encode(), slot=0)
    token = luks_dump(region)["tokens"].get("0")
    if token is None or token.get("type") != "talos-tpm2":
        return False
    passphrase = await TPMKeyProvider(0, tcti=tpm.tcti, pcrs=(7,)).get_key(token)
    return cryptsetup_opens(region, passphrase.reveal(), slot=0)


def header_bytes(region: Region) -> bytes:
    """The LUKS2 header and key slot area of the partition (everything a key change may write)."""
    data_offset = int(luks_dump(region)["segments"]["0"]["offset"])
    with region.path.open("rb") as image:
        image.seek(region.offset)
        return image.read(data_offset)


def put_header_bytes(region: Region, header: bytes) -> None:
    with region.path.open("r+b") as image:
        image.seek(region.offset)
        image.write(header)


def run_and_change_key(node: Node, kind: str, tcti: str, crash_after: int) -> tuple[bool, str]:
    """Start `volumed run` with the old key, change the config to the new one once EPHEMERAL is mounted.

    Returns (crashed at the armed write, output). Without a crash the run is killed once the key-slot sync
    that wrote has ended (the fault hook reports how many writes it made).
    """
    node.write_config(STATE, volume_config("EPHEMERAL", [static_key(0, OLD)]))
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        VOLUMED_TPM_TCTI=tcti,
        **{faults.ENV: f"key-slot-sync:{crash_after}"},
    )
    process = subprocess.Popen(
        node.run_argv(once=False),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    mounted = 0
    changed = False
    try:
        for line in process.stdout:
            lines.append(line)
            if "mounted" in line and not changed:
                mounted += 1
                if mounted == 2:  # STATE, then EPHEMERAL: the volume is open, change its only key
                    node.write_config(STATE, volume_config("EPHEMERAL", [new_key(kind)]))
                    changed = True
            if changed and "key-slot-sync ended after" in line and "after 0 writes" not in line:
                return False, "".join(lines)
        process.wait(timeout=STEP_LIMIT)
        output = "".join(lines)
        assert changed, f"the run ended before EPHEMERAL was mounted (rc {process.returncode}):\n{output}"
        assert process.returncode == faults.EXIT_CODE, f"rc {process.returncode}:\n{output}"
        return True, output
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        process.stdout.close()


@pytest.mark.parametrize("kind", ["static", "tpm"])
async def test_kill_at_every_write_of_a_key_change_by_key_slot_sync(
    node: Node, tpm: Swtpm, kind: str
) -> None:
    node.write_config(STATE, volume_config("EPHEMERAL", [static_key(0, OLD)]))
    async with node.boot(tcti=tpm.tcti) as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("EPHEMERAL") / "marker").write_text("written before the key change\n")
    region = node.region("EPHEMERAL")
    before = await anyio.to_thread.run_sync(header_bytes, region)
    seen: list[str] = []
    for n in range(1, MAX_WRITES + 1):
        put_header_bytes(region, before)
        crashed, output = await anyio.to_thread.run_sync(run_and_change_key, node, kind, tpm.tcti, n)
        node.clean_up()  # the reboot
        old = cryptsetup_opens(region, OLD.encode(), slot=0)
        new = await new_key_opens(region, kind, tpm)
        assert old or new, f"killed after write {n} of the key change: no passphrase opens EPHEMERAL"
        assert luks_slots(region) == [0]
        if not crashed:
            assert f"key-slot-sync ended after {n - 1} writes" in output, output[-2000:]
            assert (old, new) == (False, True)
            break
        seen.append("+".join(name for name, ok in (("old", old), ("new", new)) if ok))
    else:
        raise AssertionError(f"the key change did not finish within {MAX_WRITES} writes")
    assert seen[0] == "old"
    assert seen[-1] == "new"
    print(f"{kind}: key that opens after a kill at write 1..{len(seen)}: {seen}")

    node.write_config(STATE, volume_config("EPHEMERAL", [new_key(kind)]))
    async with node.boot(tcti=tpm.tcti) as boot:  # the node boots with its new key; the data is still there
        status = status_of(boot.snapshot, "EPHEMERAL")
        assert boot.snapshot.ok, describe(boot.snapshot)
        assert (status.encryption_slot, status.encryption_failed_syncs) == (0, ())
        assert (node.target("EPHEMERAL") / "marker").read_text() == "written before the key change\n"

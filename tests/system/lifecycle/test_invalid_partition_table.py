"""Issue 15 item 6: a system disk whose GPT became invalid after a first boot formatted STATE and EPHEMERAL.

EPHEMERAL's first LBA moved inside STATE, or a second partition labelled STATE: `volumed run --once` reports
neither volume ready, says why (naming the partitions), and writes nothing to the disk (its hash is the same);
`sgdisk -v` agrees the overlapping table is invalid (a name used twice is no GPT problem to it: that one is
volumed's rule, as it locates volumes by name). The tables are edited by hand (`_craft`: raw offsets,
zlib CRCs), independently of volumed's GPT writer.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from typing import TYPE_CHECKING

import anyio
import pytest

from tests._tools import require_tool
from tests.storage.gpt._craft import edit_gpt, entry, read_entries, set_entry
from tests.system.lifecycle._node import describe, node_id_key, phases, status_of, volume_config

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.system.lifecycle._node import Node


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as image:
        while chunk := image.read(1 << 24):
            sha.update(chunk)
    return sha.hexdigest()


def sgdisk_problems(path: Path) -> str:
    """What `sgdisk -v` reports (it exits 0 even when it finds problems)."""
    done = subprocess.run(
        [require_tool("sgdisk"), "-v", str(path)], capture_output=True, text=True, check=False
    )
    return done.stdout + done.stderr


def overlap_ephemeral_into_state(disk: Path) -> str:
    """Move EPHEMERAL's first LBA 2048 sectors into STATE; the expected error text."""
    state_first, state_last = entry(read_entries(disk), 2)
    _, eph_last = entry(read_entries(disk), 3)
    edit_gpt(disk, lambda a: set_entry(a, 3, first=state_first + 2048))
    return (
        f"disk {disk}: GPT partitions 3 (EPHEMERAL, LBA {state_first + 2048}..{eph_last}) and "
        f"2 (STATE, LBA {state_first}..{state_last}) overlap"
    )


def label_meta_as_state(disk: Path) -> str:
    """Rename META (partition 1) to STATE; the expected error text."""
    meta_first, meta_last = entry(read_entries(disk), 1)
    state_first, state_last = entry(read_entries(disk), 2)
    edit_gpt(disk, lambda a: set_entry(a, 1, name="STATE"))
    return (
        f"disk {disk}: GPT partitions 1 (LBA {meta_first}..{meta_last}) and "
        f"2 (LBA {state_first}..{state_last}) are both labelled STATE: which is STATE is ambiguous"
    )


@pytest.mark.parametrize("damage", [overlap_ephemeral_into_state, label_meta_as_state])
async def test_an_invalid_table_is_an_error_and_nothing_is_written(
    node: Node, damage: Callable[[Path], str]
) -> None:
    node.write_config(volume_config("STATE", [node_id_key(0)]), volume_config("EPHEMERAL", [node_id_key(0)]))
    async with node.boot() as boot:
        assert phases(boot.snapshot) == {"STATE": "ready", "EPHEMERAL": "ready"}, describe(boot.snapshot)
        (node.target("EPHEMERAL") / "marker").write_text("first boot\n")

    expected = damage(node.system_disk)
    if damage is overlap_ephemeral_into_state:
        problems = sgdisk_problems(node.system_disk)
        assert "Problem: partitions 3 and 2 overlap" in problems, problems
    before = {disk: digest(disk) for disk in (node.system_disk, node.data_disk)}

    for _ in range(2):  # boots 2 and 3: the same verdict, and still nothing written
        with anyio.fail_after(120):
            done = await anyio.run_process(node.run_argv(), check=False)
        out, err = done.stdout.decode(), done.stderr.decode()
        assert done.returncode == 6, out + err  # --once: a volume failed
        fields = [line.split() for line in out.splitlines()]
        rows = {f[0]: f[1].rstrip(":") for f in fields if len(f) > 1 and f[0] in ("STATE", "EPHEMERAL")}
        assert rows.get("STATE") == "failed", out
        assert rows.get("EPHEMERAL") == "failed", out
        assert expected in re.sub(r"\s+", " ", err), err  # the log names the disk and the partitions
        assert {disk: digest(disk) for disk in before} == before
        assert not node.leftovers()

    async with node.boot() as boot:  # the status says why, in full
        state = status_of(boot.snapshot, "STATE")
        assert (state.phase.value, state.error_message, state.location) == ("failed", expected, "")
        ephemeral = status_of(boot.snapshot, "EPHEMERAL")
        assert (ephemeral.phase.value, ephemeral.error_message, ephemeral.location) == (
            "failed",
            expected,
            "",
        )
        assert not boot.snapshot.mounted
    assert {disk: digest(disk) for disk in before} == before


async def test_a_repaired_table_is_used_and_a_ready_volume_is_kept_when_it_breaks(node: Node) -> None:
    node.write_config(volume_config("STATE", [node_id_key(0)]), volume_config("EPHEMERAL", [node_id_key(0)]))
    async with node.boot() as boot:
        assert phases(boot.snapshot) == {"STATE": "ready", "EPHEMERAL": "ready"}, describe(boot.snapshot)
    original = read_entries(node.system_disk)

    def restore(array: bytearray) -> None:
        array[:] = original

    expected = overlap_ephemeral_into_state(node.system_disk)
    async with node.boot() as boot:
        assert phases(boot.snapshot) == {"STATE": "failed", "EPHEMERAL": "failed"}, describe(boot.snapshot)
        edit_gpt(node.system_disk, restore)  # the operator repairs the table (as sgdisk would)
        await boot.wait_for(
            lambda s: (
                phases(s) == {"STATE": "ready", "EPHEMERAL": "ready"} and s.mounted == {"STATE", "EPHEMERAL"}
            ),
            what="both volumes ready once the table is repaired",
        )
        overlap_ephemeral_into_state(node.system_disk)  # and it breaks again under the running volumes
        snapshot = await boot.wait_for(
            lambda s: all(v.error_message == f"{expected}: kept as it is" for v in s.statuses.values()),
            what="the ready volumes to report the invalid table",
        )
        assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "ready"}
        assert snapshot.mounted == {"STATE", "EPHEMERAL"}

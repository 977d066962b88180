"""Only a provably blank partition is formatted (issue 15, items 1 and 4).

Content our own detectors do not know (minix, cramfs, a ceph_bluestore signature, plain non-zero data) was
taken for empty and LUKS-formatted. An ext4 with a stale LUKS2 secondary header in it was taken for LUKS,
and opening it wrote a new primary header over the ext4 at every boot. Now each is refused with Talos'
"block dev type mismatch", and the partition is unchanged byte for byte.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import anyio.to_thread
import pytest

from tests.storage.probe._contents import KINDS, ext4_file, write_ext4_with_stale_secondary, write_unknown
from tests.system.lifecycle._node import describe, node_id_key, phases, status_of, volume_config

if TYPE_CHECKING:
    from pathlib import Path

    from tests.system.lifecycle._node import Node

ENCRYPTED = (volume_config("STATE", [node_id_key(0)]), volume_config("EPHEMERAL", [node_id_key(0)]))
WHAT = {
    "minix": "minix",
    "cramfs": "cramfs",
    "ceph_bluestore": "ceph_bluestore",
    "noise": "unknown data (no signature libblkid knows, but the first MiB is not zero)",
}


def _run_once(node: Node) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        node.run_argv(timeout=30.0), capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_content_only_libblkid_knows_is_not_encrypted_over(
    node: Node, tmp_path: Path, kind: str
) -> None:
    ephemeral = node.region("EPHEMERAL")
    write_unknown(kind, ephemeral.path, ephemeral.offset, ephemeral.size, tmp_path)
    before = ephemeral.digest()
    node.write_config(*ENCRYPTED)
    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "failed"}, describe(snapshot)
        message = status_of(snapshot, "EPHEMERAL").error_message
        assert message == f"block dev type mismatch: {WHAT[kind]} != luks"
    assert ephemeral.digest() == before


async def test_content_only_libblkid_knows_gets_no_filesystem(node: Node, tmp_path: Path) -> None:
    """An unencrypted volume: mkfs-if-empty asks the same question (Talos' wording of that phase)."""
    ephemeral = node.region("EPHEMERAL")
    write_unknown("minix", ephemeral.path, ephemeral.offset, ephemeral.size, tmp_path)
    before = ephemeral.digest()
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"))
    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "failed"}, describe(snapshot)
        assert status_of(snapshot, "EPHEMERAL").error_message == "filesystem type mismatch: minix != xfs"
    assert ephemeral.digest() == before


async def test_ext4_with_a_stale_luks2_secondary_header_is_neither_opened_nor_formatted(
    node: Node, tmp_path: Path
) -> None:
    ephemeral = node.region("EPHEMERAL")
    payload = write_ext4_with_stale_secondary(ephemeral.path, ephemeral.offset, tmp_path)
    before = ephemeral.digest()
    node.write_config(*ENCRYPTED)
    for _ in range(2):  # every boot: before the fix, each one wrote a new primary header over the ext4
        async with node.boot() as boot:
            snapshot = boot.snapshot
            assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "failed"}, describe(snapshot)
            message = status_of(snapshot, "EPHEMERAL").error_message
            where = f"{ephemeral.path} at byte {ephemeral.offset}"
            assert message == (
                f"block dev type mismatch: ambiguous signatures on {where}"
                " (a stale LUKS2 secondary header at offset 0x400000 and ext4) != luks"
            )
        assert ephemeral.digest() == before
    # and `volumed run` as an init starts it: fails, names the volume's error, writes nothing
    result = await anyio.to_thread.run_sync(_run_once, node)
    assert result.returncode != 0
    assert "ambiguous signatures" in result.stdout + result.stderr
    assert ephemeral.digest() == before
    copy = tmp_path / "ephemeral-copy.img"
    with ephemeral.path.open("rb") as disk, copy.open("wb") as out:
        disk.seek(ephemeral.offset)
        out.write(disk.read(64 << 20))
    assert ext4_file(copy, tmp_path) == payload

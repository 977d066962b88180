"""Inside an opened LUKS2 volume, mkfs runs only where volumed formatted the volume and never made its
filesystem (the mkfs-pending mark its LUKS2 format commits with the key slot).

Before, the decrypted view was checked for signatures only: a LUKS2 volume made by cryptsetup with the
config's passphrase, holding raw data, and volumed's own XFS with its first 4 KiB zeroed were both given a
new XFS. Now each fails with "filesystem type mismatch: unknown data != xfs" and keeps every byte.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from tests.system.lifecycle._node import (
    VOLUMED,
    describe,
    phases,
    run_tool,
    static_key,
    status_of,
    volume_config,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.system.lifecycle._node import Node, Region

PASSPHRASE = "pass0"
ENCRYPTED = (
    volume_config("STATE", [static_key(0, PASSPHRASE)]),
    volume_config("EPHEMERAL", [static_key(0, PASSPHRASE)]),
)
MIB = 1 << 20


def _luks(verb: str, region: Region, key: Path, data: bytes | None = None) -> bytes:
    """`volumed luks read|write` of the partition's decrypted bytes (binary stdin/stdout)."""
    argv = [VOLUMED, "luks", verb, "-d", str(key), "--volume-offset", str(region.offset)]
    argv += ["--volume-size", str(region.size), str(region.path)]
    result = subprocess.run(argv, input=data, capture_output=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


async def _assert_refused(node: Node, region: Region) -> None:
    before = region.digest()
    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "failed"}, describe(snapshot)
        message = status_of(snapshot, "EPHEMERAL").error_message
        assert message.startswith("filesystem type mismatch: unknown data != xfs"), message
    assert region.digest() == before


async def test_cryptsetup_volume_with_raw_data_gets_no_filesystem(node: Node, tmp_path: Path) -> None:
    ephemeral = node.region("EPHEMERAL")
    key = tmp_path / "key"
    key.write_text(PASSPHRASE)
    with ephemeral.device(read_only=False) as device:
        run_tool(
            "cryptsetup",
            "luksFormat",
            "-q",
            "--type",
            "luks2",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            key,
            device,
        )
    payload = os.urandom(64 * MIB)
    _luks("write", ephemeral, key, payload)
    node.write_config(*ENCRYPTED)
    await _assert_refused(node, ephemeral)
    assert _luks("read", ephemeral, key)[: len(payload)] == payload


async def test_own_xfs_with_its_superblock_zeroed_is_not_made_again(node: Node, tmp_path: Path) -> None:
    ephemeral = node.region("EPHEMERAL")
    key = tmp_path / "key"
    key.write_text(PASSPHRASE)
    node.write_config(*ENCRYPTED)
    async with node.boot() as boot:
        assert phases(boot.snapshot) == {"STATE": "ready", "EPHEMERAL": "ready"}, describe(boot.snapshot)
    _luks("write", ephemeral, key, bytes(4096))
    await _assert_refused(node, ephemeral)


def test_first_format_does_not_claim_an_interrupted_mkfs(node: Node) -> None:
    """The mark a new LUKS2 volume carries from its format is no interrupted mkfs: the log must not say so
    (it did at every first boot once the format committed the mark)."""
    node.write_config(*ENCRYPTED)
    result = subprocess.run(
        node.run_argv(timeout=60.0), capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "making the filesystem of the new LUKS2 volume" in result.stdout + result.stderr
    assert "an earlier mkfs was interrupted" not in result.stdout + result.stderr

"""Seed doc "Going from Unencrypted to Encrypted": EPHEMERAL is unencrypted; the new config is applied with
`volumed apply-config --mode staged`, EPHEMERAL is wiped with `volumed wipe --system-labels-to-wipe
EPHEMERAL`, and the next boot encrypts it (an empty partition) while STATE keeps its data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.system.lifecycle._node import (
    describe,
    luks_slots,
    node_id_key,
    status_of,
    volume_config,
    write_config,
)
from volumed.controllers import staged_path

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node


async def test_unencrypted_to_encrypted_ephemeral(node: Node) -> None:
    node.write_config(volume_config("STATE", [node_id_key(0)]), volume_config("EPHEMERAL"))
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        assert status_of(boot.snapshot, "EPHEMERAL").encryption_provider == ""
        (node.target("STATE") / "marker").write_text("state survives\n")
        (node.target("EPHEMERAL") / "marker").write_text("wiped with EPHEMERAL\n")
    before = node.config.read_bytes()

    new_config = write_config(
        node.workdir / "encrypted.yaml",
        volume_config("STATE", [node_id_key(0)]),
        volume_config("EPHEMERAL", [node_id_key(0)]),
    )
    applied = node.volumed("apply-config", new_config, "--mode", "staged", "--config", node.config)
    assert "staged" in applied.stdout
    assert node.config.read_bytes() == before  # staged: the running node's config is not touched
    assert staged_path(node.config).exists()

    wiped = node.volumed("wipe", node.system_disk, "--system-labels-to-wipe", "EPHEMERAL", "--yes")
    assert wiped.stdout.startswith("wiped EPHEMERAL"), wiped.stdout
    assert "xfs" in wiped.stdout

    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert snapshot.ok, describe(snapshot)
        ephemeral = status_of(snapshot, "EPHEMERAL")
        assert (ephemeral.encryption_provider, ephemeral.encryption_slot) == ("luks2", 0)
        assert not (node.target("EPHEMERAL") / "marker").exists()  # a fresh, encrypted filesystem
        assert (node.target("STATE") / "marker").read_text() == "state survives\n"
        (node.target("EPHEMERAL") / "marker").write_text("encrypted now\n")
    assert node.config.read_bytes() == new_config.read_bytes()  # the staged config was promoted
    assert not staged_path(node.config).exists()
    assert luks_slots(node.region("EPHEMERAL")) == [0]

    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        assert (node.target("EPHEMERAL") / "marker").read_text() == "encrypted now\n"

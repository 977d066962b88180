"""Without a machine config and without META tag 9, STATE is looked for unencrypted, as Talos'
`manageStateNoConfig` does (no STATE was set up at all: `--once` waited out its timeout with an empty
table). A STATE that holds LUKS2 is then refused, never written."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from tests.system.lifecycle._node import describe, static_key, status_of, volume_config

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node


def run_without_config(node: Node) -> subprocess.CompletedProcess[str]:
    """`volumed run --once` with a config file that does not exist."""
    return subprocess.run(
        node.run_argv(config=node.workdir / "no-such-config.yaml", timeout=60.0),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _drop_tag9(node: Node) -> None:
    meta = node.region("META")
    node.volumed("meta", "delete", node.system_disk, "9", "--offset", str(meta.offset))
    shown = node.volumed("meta", "get", node.system_disk, "9", "--offset", str(meta.offset), check=False)
    assert shown.returncode != 0, shown.stdout


async def test_an_unencrypted_state_opens_without_config_and_tag_9(node: Node) -> None:
    node.write_config(volume_config("STATE"), volume_config("EPHEMERAL"))
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("STATE") / "marker").write_text("on STATE\n")
    _drop_tag9(node)
    missing = node.workdir / "no-such-config.yaml"
    async with node.boot(config=missing) as boot:
        snapshot = boot.snapshot
        assert snapshot.configured == {"STATE"}, describe(snapshot)
        assert snapshot.ok, describe(snapshot)
        assert status_of(snapshot, "STATE").encryption_provider == ""
        assert (node.target("STATE") / "marker").read_text() == "on STATE\n"


def test_an_encrypted_state_without_tag_9_fails_quickly_and_is_not_written(node: Node) -> None:
    node.write_config(volume_config("STATE", [static_key(0, "state-secret")]))
    done = subprocess.run(node.run_argv(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    _drop_tag9(node)
    state = node.region("STATE")
    before = state.digest()
    done = run_without_config(node)
    assert done.returncode == 6, done.stdout + done.stderr
    assert "STATE failed: filesystem type mismatch" in done.stdout, done.stdout
    assert state.digest() == before


def test_a_blank_state_without_config_is_missing_and_not_formatted(node: Node) -> None:
    """Talos locates STATE without a config only when it holds something (`volume.name != ''`)."""
    state = node.region("STATE")
    before = state.digest()
    done = run_without_config(node)
    assert done.returncode == 7, done.stdout + done.stderr
    assert "STATE missing" in done.stdout, done.stdout
    assert state.digest() == before

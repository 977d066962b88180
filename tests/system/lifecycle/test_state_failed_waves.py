"""STATE failing (its nodeID key has no node UUID) holds back only what needs STATE: an existing user volume
with a static key opens and mounts (Talos: locating and opening never wait for another wave), a volume whose
keys are locked to STATE waits for its salt, a new one waits to be provisioned after it, each with its reason,
and `volumed run --once` ends at once with the failed code (it used to wait 10 min: every user volume stayed
`waiting`, with no reason, behind STATE)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from tests._tools import require_tool
from tests.system.lifecycle._node import (
    describe,
    node_id_key,
    static_key,
    status_of,
    user_volume_config,
    volume_config,
)
from volumed.cli.run import EXIT_VOLUME_FAILED
from volumed.resources import VolumePhase

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

DMI_DIR = Path("/sys/class/dmi/id")
FAST_ARGON2 = {"type": "argon2id", "memory": 32, "iterations": 4, "parallel": 1}  # Talos opens no pbkdf2


def _user_volume(name: str, keys: list[dict[str, Any]]) -> dict[str, Any]:
    """64 MiB exactly (min = max, no grow): three of them fit on the data disk whatever the sizing rule."""
    document = user_volume_config(name, keys)
    document["provisioning"].update({"minSize": "64MiB", "maxSize": "64MiB", "grow": False})
    return document


def _documents(*, new_volume: bool) -> list[dict[str, Any]]:
    documents = [
        volume_config("STATE", [node_id_key(0)]),
        volume_config("EPHEMERAL"),
        _user_volume("data", [static_key(0, "data-secret")]),
        _user_volume("locked", [static_key(0, "locked-secret", lock=True)]),
    ]
    if new_volume:
        documents.append(_user_volume("new", [static_key(0, "new-secret")]))
    for document in documents:
        if "encryption" in document:
            document["encryption"]["pbkdf"] = dict(FAST_ARGON2)
    return documents


def _without_node_uuid(argv: list[str]) -> list[str]:
    """`volumed run` with no node UUID at all: no flag, and (where the machine has one) no SMBIOS UUID: it
    runs in its own mount namespace with an empty tmpfs over /sys/class/dmi/id."""
    index = argv.index("--node-uuid")
    argv = argv[:index] + argv[index + 2 :]
    if not (DMI_DIR / "product_uuid").exists():
        return argv
    require_tool("unshare")
    hide = f'mount -t tmpfs volumed-test {DMI_DIR} && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh", *argv]


async def test_a_failed_state_holds_back_only_what_needs_it(node: Node) -> None:
    node.write_config(*_documents(new_volume=False))
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("u-data") / "marker").write_text("on u-data\n")

    node.write_config(*_documents(new_volume=True))
    no_dmi = str(node.workdir / "no-dmi")
    async with node.boot(node_uuid=None, dmi_path=no_dmi, limit=60.0) as boot:
        snapshot = boot.snapshot
        state = status_of(snapshot, "STATE")
        assert state.phase == VolumePhase.FAILED, describe(snapshot)
        assert "machine UUID is not populated" in state.error_message, describe(snapshot)
        # the existing user volume is located and opened regardless of STATE, and mounted
        assert status_of(snapshot, "u-data").phase == VolumePhase.READY, describe(snapshot)
        assert (node.target("u-data") / "marker").read_text() == "on u-data\n"
        assert status_of(snapshot, "EPHEMERAL").phase == VolumePhase.READY, describe(snapshot)
        # a waiting volume always says what it waits for
        locked = status_of(snapshot, "u-locked")
        assert (locked.phase, locked.waiting_for) == (VolumePhase.WAITING, ("STATE",)), describe(snapshot)
        assert locked.error_message == "waiting for the STATE salt (keys are locked to STATE)"
        new = status_of(snapshot, "u-new")
        assert new.phase == VolumePhase.WAITING, describe(snapshot)
        assert "u-locked" in new.waiting_for, describe(snapshot)
        assert new.error_message.startswith("waiting for volume"), describe(snapshot)
        assert "u-locked" in new.error_message, describe(snapshot)
        assert snapshot.blocked.keys() == {"u-locked", "u-new"}, snapshot.blocked
        assert snapshot.blocked["u-locked"] == "STATE failed"

    argv = _without_node_uuid(node.run_argv(timeout=300.0))
    started = time.monotonic()
    with anyio.fail_after(600):
        result = await anyio.run_process(argv, check=False)
    elapsed = time.monotonic() - started
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    print(f"volumed run --once with STATE failed ended after {elapsed:.1f} s")
    # not the timeout's code (1): it ended because nothing more could happen
    assert result.returncode == EXIT_VOLUME_FAILED, (result.returncode, stdout, stderr)
    lines = stdout.splitlines()
    assert re.search(r"^u-data +ready ", stdout, re.MULTILINE), stdout  # the table's row
    assert not [line for line in lines if line.startswith(("u-data ready:", "EPHEMERAL ready:"))], stdout
    reasons = {
        line.split()[0]: line
        for line in lines
        if ": " in line and line.split()[0] in ("STATE", "u-locked", "u-new")
    }
    assert reasons["STATE"].startswith("STATE failed: "), stdout
    assert "machine UUID is not populated" in reasons["STATE"], stdout
    assert reasons["u-locked"] == (
        "u-locked waiting: waiting for the STATE salt (keys are locked to STATE); blocked: STATE failed"
    ), stdout
    assert reasons["u-new"].startswith("u-new waiting: waiting for volume"), stdout
    assert "u-locked" in reasons["u-new"], stdout
    assert reasons["u-new"].endswith("; blocked: STATE failed"), stdout

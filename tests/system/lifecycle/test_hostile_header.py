"""A LUKS2 header with hostile KDF or area parameters on one volume of the node: `volumed run` keeps
running, that volume alone fails with a clear error naming the field, nothing of it is written, and the
other volumes format, open and mount.

Before the fix, pbkdf2 iterations >= 2^32 made `cryptography` panic (pyo3's PanicException, a
BaseException) and the panic ended `volumed run`; argon2 memory 2^40 or area.key_size 2^33 raised errors
that failed the VolumeFormatter's whole reconcile (and cancelled the other volumes of its wave) forever.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.system.lifecycle._node import (
    Node,
    Region,
    static_key,
    status_of,
    user_volume_config,
    volume_config,
)
from volumed.cli.api import ApiClient, ApiError
from volumed.controllers.block import _formatter
from volumed.resources import VolumePhase
from volumed.storage.luks2._device import Region as LuksRegion
from volumed.storage.luks2._header_io import load, write_copies

if TYPE_CHECKING:
    from collections.abc import Callable

    from volumed.controllers.block._encryption import Location, OpenedVolume

pytestmark = pytest.mark.system

LIMIT = 90.0


def _fixed_size(document: dict[str, Any]) -> dict[str, Any]:
    # two user volumes share the data disk: each exactly its minSize (without maxSize it would take all)
    document["provisioning"].update({"grow": False, "maxSize": document["provisioning"]["minSize"]})
    return document


CONFIG = (
    volume_config("STATE"),
    volume_config("EPHEMERAL"),
    _fixed_size(user_volume_config("good", [static_key(0, "good-secret")])),
    _fixed_size(user_volume_config("bad", [static_key(0, "bad-secret")])),
)


def poison(region: Region, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit the JSON metadata of both header copies of the partition (valid checksums, hostile values)."""
    with region.path.open("r+b") as image:
        luks = LuksRegion(image, offset=region.offset, size=region.size)
        state = load(luks)
        top = json.loads(state.json_text)
        edit(top)
        text = json.dumps(top, separators=(",", ":")).encode()
        size = state.binary.json_size
        write_copies(luks, state.binary, text + bytes(size - len(text)), state.salts)


def pbkdf2_iterations_2_32(top: dict[str, Any]) -> None:
    """A pbkdf2 KDF whatever the slot had (the configs make argon2id slots since pbkdf2 is refused)."""
    salt = top["keyslots"]["0"]["kdf"]["salt"]
    top["keyslots"]["0"]["kdf"] = {"type": "pbkdf2", "hash": "sha256", "iterations": 2**32, "salt": salt}


def argon2_memory_2_40(top: dict[str, Any]) -> None:
    top["keyslots"]["0"]["kdf"] = {
        "type": "argon2id",
        "time": 4,
        "memory": 2**40,
        "cpus": 1,
        "salt": top["keyslots"]["0"]["kdf"]["salt"],
    }


def area_key_size_2_33(top: dict[str, Any]) -> None:
    top["keyslots"]["0"]["area"]["key_size"] = 2**33


def statuses(socket: Path) -> dict[str, tuple[str, str]]:
    items = ApiClient(str(socket)).get("volumestatuses").items
    return {item["metadata"]["id"]: (item["spec"]["phase"], item["spec"]["error_message"]) for item in items}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (pbkdf2_iterations_2_32, "keyslots.0: pbkdf2 iterations 4294967296 out of range 1000..4294967295"),
        (argon2_memory_2_40, "keyslots.0: argon2 memory 1099511627776 KiB out of range 32..4194304"),
        (area_key_size_2_33, "keyslots.0: area.key_size 8589934592 out of range 1..512"),
    ],
    ids=["pbkdf2-iterations", "argon2-memory", "area-key-size"],
)
def test_one_hostile_header_fails_that_volume_only_and_volumed_run_keeps_running(
    node: Node, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    node.write_config(*CONFIG)
    first = subprocess.run(node.run_argv(), capture_output=True, text=True, timeout=LIMIT, check=False)
    assert first.returncode == 0, f"first boot did not converge:\n{first.stdout}\n{first.stderr}"

    bad = node.region("u-bad")
    poison(bad, edit)
    before = bad.digest()

    socket = node.state_dir / "api.sock"
    process = subprocess.Popen(
        node.run_argv(once=False),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        text=True,
        start_new_session=True,
    )
    seen: dict[str, tuple[str, str]] = {}
    try:
        deadline = time.monotonic() + LIMIT
        while time.monotonic() < deadline and process.poll() is None:
            if socket.exists():
                try:
                    seen = statuses(socket)
                except (ApiError, OSError):  # not listening yet (the socket of the first boot is left)
                    seen = {}
                good_ready = seen.get("u-good", ("",))[0] == "ready" and node.target("u-good").is_mount()
                system_ready = all(seen.get(v, ("",))[0] == "ready" for v in ("STATE", "EPHEMERAL"))
                if good_ready and system_ready and seen.get("u-bad", ("",))[0] == "failed":
                    break  # STATE mounts independently of the user volumes: wait for it too
            time.sleep(0.2)
        assert process.poll() is None, "volumed run ended"
        assert seen.get("u-good", ("",))[0] == "ready", f"the good volume is not ready: {seen}"
        assert seen["u-bad"][0] == "failed", seen
        assert message in seen["u-bad"][1]
        for volume in ("STATE", "EPHEMERAL"):
            assert seen[volume][0] == "ready", seen
        assert node.target("u-good").is_mount()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output
    assert "PanicException" not in output
    assert bad.digest() == before  # not one byte of the hostile volume was written


async def test_an_unforeseen_error_in_one_volume_fails_that_volume_only(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception one volume's step raises fails that volume; it failed the formatter's whole reconcile
    and cancelled the other volumes of its wave, so none of them ever got ready."""
    node.write_config(*CONFIG)
    async with node.boot():
        pass
    bad = node.region("u-bad")
    real_open = _formatter.open_encrypted

    async def faulty_open(location: Location, *args: Any, **kwargs: Any) -> OpenedVolume:
        if Path(location.path) == bad.path and location.offset == bad.offset:
            raise RuntimeError("injected fault")  # the fault hook: an error nobody foresaw
        return await real_open(location, *args, **kwargs)

    monkeypatch.setattr(_formatter, "open_encrypted", faulty_open)
    async with node.boot() as booted:
        snapshot = booted.snapshot
        assert status_of(snapshot, "u-good").phase is VolumePhase.READY
        failed = status_of(snapshot, "u-bad")
        assert failed.phase is VolumePhase.FAILED
        assert failed.error_message == "unexpected error: RuntimeError: injected fault"
        assert node.target("u-good").is_mount()

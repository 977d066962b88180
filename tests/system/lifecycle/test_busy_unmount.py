"""A mounted volume held busy (a file open on it) when the config drops it, or at shutdown (review F3):
umount fails with EBUSY. The Mounter forgot the mount before umount ran, so the volume stayed mounted but
unknown: its status stayed tearingDown for good, and at shutdown its mapping was closed under the mounted
filesystem."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

from tests.system.lifecycle._node import describe, static_key, user_volume_config, volume_config
from volumed.storage.filesystem import find_mount

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Booted, Node

SYSTEM = (volume_config("STATE"), volume_config("EPHEMERAL"))
DATA = user_volume_config("data", [static_key(0, "data-secret")])


def _logged(logs: list[dict[str, Any]], text: str) -> bool:
    return any(text in str(entry.get("event", "")) for entry in logs)


async def _wait_logged(boot: Booted, logs: list[dict[str, Any]], text: str) -> None:
    try:
        await boot.wait_for(lambda _: _logged(logs, text), what=f"a log line {text!r}")
    except AssertionError as error:
        seen = [e for e in logs if e.get("log_level") != "debug"]
        raise AssertionError(f"{error}; logged: {seen}") from None


async def test_a_busy_volume_dropped_by_the_config_is_unmounted_and_closed_once_released(node: Node) -> None:
    node.write_config(*SYSTEM, DATA)
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        target = node.target("u-data")
        services = boot.subsystem.services
        with capture_logs() as logs, (target / "file.txt").open("a") as held:
            held.write("busy\n")
            node.write_config(*SYSTEM)  # u-data dropped while a file on it is open
            await _wait_logged(boot, logs, "cannot unmount u-data")
            assert find_mount(target) is not None
            assert await services.is_active("u-data")  # not closed under its mounted filesystem
            assert "u-data-volumed" in services.mounts  # still known, so it is retried
            failed = [
                (e.get("controller"), e.get("error")) for e in logs if e.get("event") == "reconcile failed"
            ]
            assert not failed, failed  # no controller fails (with a traceback) over it meanwhile
        # released: the next retry unmounts it, removes the finalizer, and the volume closes
        await boot.wait_for(lambda s: "u-data" not in s.statuses, what="u-data to be torn down")
        assert find_mount(target) is None
        assert not await services.is_active("u-data")
        assert "u-data-volumed" not in services.mounts


async def _stop_while_held(node: Node, held: list[IO[str]]) -> None:
    """Boot, open a file on u-data, stop with it still open."""
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        held.append((node.target("u-data") / "file.txt").open("a"))


async def test_a_volume_busy_at_shutdown_is_left_mounted_and_open(node: Node) -> None:
    """Its mapping is not closed under the mounted filesystem (then its writers failed); a reboot (the
    fixture's clean-up) clears it once the file is closed, and then nothing is left."""
    node.write_config(*SYSTEM, DATA)
    held: list[IO[str]] = []
    try:
        with capture_logs() as logs, pytest.raises(AssertionError, match="left these behind at shutdown"):
            await _stop_while_held(node, held)
        assert _logged(logs, "left mounted at shutdown"), logs[-10:]
        assert not _logged(logs, "close failed at shutdown"), logs[-10:]
        assert find_mount(node.target("u-data")) is not None
        held[0].write("still writable\n")
        held[0].flush()  # its device was not closed under it
    finally:
        for file in held:
            file.close()

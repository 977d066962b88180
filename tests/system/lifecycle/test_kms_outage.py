"""Seed doc kms keys: "strong, but requires network access to decrypt the data". The KMS server (`volumed kms
serve`, a separate process) is down at boot: the volume fails, retryably, its header untouched; once the
server is back on the same address the volume opens on the retry timer, without a reboot."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

from tests.system.lifecycle._node import (
    VOLUMED,
    describe,
    kms_key,
    luks_dump,
    node_id_key,
    phases,
    status_of,
    volume_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.system.lifecycle._node import Node


@pytest.fixture(autouse=True)
def _grpc_logs_at_warning() -> Iterator[None]:
    """grpc's Cython DEBUG records under pytest's log capture crashed the interpreter (tests/interop/kms)."""
    grpc_logger = logging.getLogger("grpc")
    saved = grpc_logger.level
    grpc_logger.setLevel(logging.WARNING)
    yield
    grpc_logger.setLevel(saved)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class KmsProcess:
    """`volumed kms serve` on a fixed loopback port, started and stopped (by PID) as the test says."""

    def __init__(self, workdir: Path) -> None:
        self.key_file = workdir / "kms-master.key"
        self.log = workdir / "kms.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        subprocess.run(
            [VOLUMED, "kms", "keygen", "--key-file", str(self.key_file)], check=True, capture_output=True
        )

    @property
    def endpoint(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            argv = [
                VOLUMED,
                "kms",
                "serve",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--key-file",
                str(self.key_file),
            ]
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, f"the KMS server exited: {self.log.read_text()[-500:]}"
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert time.monotonic() < deadline, "the KMS server did not listen within 20 s"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


@pytest.fixture
def kms(node: Node) -> Iterator[KmsProcess]:
    server = KmsProcess(node.workdir)
    try:
        yield server
    finally:
        server.stop()


async def test_volume_waits_for_the_kms_server(node: Node, kms: KmsProcess) -> None:
    node.write_config(
        volume_config("STATE", [node_id_key(0)]), volume_config("EPHEMERAL", [kms_key(0, kms.endpoint)])
    )
    kms.start()
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("EPHEMERAL") / "marker").write_text("sealed by the KMS\n")
    ephemeral = node.region("EPHEMERAL")
    tokens = luks_dump(ephemeral)["tokens"]
    assert tokens["0"]["type"] == "sideroKMS"  # token id == key slot; Talos leaves "keyslots" empty
    kms.stop()
    header_before = luks_dump(ephemeral)

    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert phases(snapshot) == {"STATE": "ready", "EPHEMERAL": "failed"}, describe(snapshot)
        assert "slot 0 (kms)" in status_of(snapshot, "EPHEMERAL").error_message
        assert luks_dump(ephemeral) == header_before  # a failed open writes nothing

        kms.start()  # the server comes back: the next retry (0.5 s timer) opens the volume
        snapshot = await boot.wait_for(
            lambda s: s.ok and "EPHEMERAL" in s.mounted,
            limit=30,
            what="EPHEMERAL to open after the KMS came back",
        )
        status = status_of(snapshot, "EPHEMERAL")
        assert (status.encryption_slot, status.encryption_failed_syncs) == (0, ())
        assert (node.target("EPHEMERAL") / "marker").read_text() == "sealed by the KMS\n"


async def test_a_kms_slot_that_failed_to_sync_is_enrolled_once_the_kms_is_back(
    node: Node, kms: KmsProcess
) -> None:
    """A key-slot sync that failed (KMS down) was retried only when the config changed: slot 1 stayed missing
    until a restart. It is now retried on the retry timer while the volume stays open."""
    node.write_config(
        volume_config("STATE", [node_id_key(0)]),
        volume_config("EPHEMERAL", [node_id_key(0), kms_key(1, kms.endpoint)]),
    )
    async with node.boot() as boot:
        snapshot = boot.snapshot
        assert snapshot.ok, describe(snapshot)
        failed = status_of(snapshot, "EPHEMERAL").encryption_failed_syncs
        assert len(failed) == 1, describe(snapshot)
        assert failed[0].startswith("error adding key slot 1 kms"), failed
        ephemeral = node.region("EPHEMERAL")
        assert sorted(luks_dump(ephemeral)["keyslots"]) == ["0"]

        kms.start()
        snapshot = await boot.wait_for(
            lambda s: not status_of(s, "EPHEMERAL").encryption_failed_syncs,
            limit=30,
            what="the kms slot to be enrolled after the KMS came back",
        )
        dump = luks_dump(ephemeral)
        assert sorted(dump["keyslots"]) == ["0", "1"]
        assert dump["tokens"]["1"]["type"] == "sideroKMS"

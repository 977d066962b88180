"""A key slot whose kind changes in the config (slot 1: static -> kms, our `volumed kms serve` as the KMS)
converges at the next boot, in one key-slot sync: cryptsetup sees a sideroKMS token at token id 1 (Talos'
layout: token id == key slot), slot 1 opens with the key the KMS unseals from it, and no longer with the
static passphrase; slot 0 kept opening throughout. The same change made while the volume is open converges
without a reboot."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from tests.system.lifecycle._node import (
    cryptsetup_opens,
    describe,
    kms_key,
    luks_dump,
    node_id_key,
    static_key,
    status_of,
    volume_config,
)
from tests.system.lifecycle.test_kms_outage import KmsProcess
from volumed.keys.kms import KMSKeyProvider

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.system.lifecycle._node import Node, Region

STATE = volume_config("STATE", [node_id_key(0)])
BEFORE = volume_config("EPHEMERAL", [static_key(0, "recovery"), static_key(1, "slot one")])


@pytest.fixture(autouse=True)
def _grpc_logs_at_warning() -> Iterator[None]:
    """grpc's Cython DEBUG records under pytest's log capture crashed the interpreter (tests/interop/kms)."""
    grpc_logger = logging.getLogger("grpc")
    saved = grpc_logger.level
    grpc_logger.setLevel(logging.WARNING)
    yield
    grpc_logger.setLevel(saved)


@pytest.fixture
def kms(node: Node) -> Iterator[KmsProcess]:
    server = KmsProcess(node.workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def kms_passphrase(node: Node, token: dict[str, Any], endpoint: str) -> bytes:
    provider = KMSKeyProvider(slot=1, endpoint=endpoint, node_uuid=node.node_uuid)
    return (await provider.get_key(token)).reveal()


async def assert_slot_1_is_kms(node: Node, region: Region, endpoint: str) -> None:
    dump = luks_dump(region)
    assert sorted(dump["keyslots"]) == ["0", "1"]
    token = dump["tokens"]["1"]
    assert token["type"] == "sideroKMS"
    assert cryptsetup_opens(region, await kms_passphrase(node, token, endpoint), slot=1)
    assert not cryptsetup_opens(region, b"slot one")
    assert cryptsetup_opens(region, b"recovery", slot=0)


async def test_static_to_kms_on_slot_1_converges_at_the_next_boot(node: Node, kms: KmsProcess) -> None:
    node.write_config(STATE, BEFORE)
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        (node.target("EPHEMERAL") / "marker").write_text("kept through the kind change\n")
    region = node.region("EPHEMERAL")
    assert cryptsetup_opens(region, b"slot one", slot=1)

    node.write_config(
        STATE, volume_config("EPHEMERAL", [static_key(0, "recovery"), kms_key(1, kms.endpoint)])
    )
    async with node.boot() as boot:
        status = status_of(boot.snapshot, "EPHEMERAL")
        assert boot.snapshot.ok, describe(boot.snapshot)
        assert (status.encryption_slot, status.encryption_failed_syncs) == (0, ())
        assert status.configured_encryption_keys == ("static", "kms")
        assert (node.target("EPHEMERAL") / "marker").read_text() == "kept through the kind change\n"
    await assert_slot_1_is_kms(node, region, kms.endpoint)


async def test_static_to_kms_on_slot_1_converges_while_open(node: Node, kms: KmsProcess) -> None:
    node.write_config(STATE, BEFORE)
    region = node.region("EPHEMERAL")
    async with node.boot() as boot:
        assert boot.snapshot.ok, describe(boot.snapshot)
        node.write_config(
            STATE, volume_config("EPHEMERAL", [static_key(0, "recovery"), kms_key(1, kms.endpoint)])
        )
        with anyio.fail_after(30):
            while True:
                if luks_dump(region)["tokens"].get("1", {}).get("type") == "sideroKMS":
                    break
                await anyio.sleep(0.2)
        snapshot = await boot.wait_for(
            lambda s: status_of(s, "EPHEMERAL").configured_encryption_keys == ("static", "kms"),
            what="the status to show the kms key",
        )
        assert status_of(snapshot, "EPHEMERAL").encryption_failed_syncs == (), describe(snapshot)
        assert "EPHEMERAL" in snapshot.mounted
    await assert_slot_1_is_kms(node, region, kms.endpoint)

"""Every key provider that runs without external services keeps the KeyProvider contract."""

from collections.abc import Callable

import pytest

from volumed.keys import (
    DiskSalt,
    KeyProvider,
    KeyUnavailableError,
    LockedToStateKeyProvider,
    NodeIDKeyProvider,
    StaticKeyProvider,
    with_time_limit,
)
from volumed.keys.testing import FakeKeyProvider, FakeSealingKeyProvider, check_provider_conformance

UUID = "12345678-1234-5678-1234-567812345678"
SALT = DiskSalt(bytes(range(32)))

PROVIDERS: dict[str, tuple[Callable[[], KeyProvider], bool]] = {
    "static": (lambda: StaticKeyProvider(slot=0, passphrase=b"static-secret"), False),
    "nodeID": (lambda: NodeIDKeyProvider(slot=1, node_uuid=UUID, volume_id="EPHEMERAL"), False),
    "static+lockToSTATE": (
        lambda: LockedToStateKeyProvider(StaticKeyProvider(slot=2, passphrase=b"static-secret"), SALT),
        False,
    ),
    "nodeID+time limit": (
        lambda: with_time_limit(NodeIDKeyProvider(slot=3, node_uuid=UUID, volume_id="u-data"), 5),
        False,
    ),
    "fake": (lambda: FakeKeyProvider(slot=4), False),
    "fake sealed": (lambda: FakeSealingKeyProvider(slot=5), True),
    "fake sealed+lockToSTATE": (lambda: LockedToStateKeyProvider(FakeSealingKeyProvider(slot=6), SALT), True),
}


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_conformance(name: str) -> None:
    factory, sealed = PROVIDERS[name]
    await check_provider_conformance(factory(), sealed=sealed)


async def test_fake_provider_records_calls_and_fails_on_demand() -> None:
    fake = FakeKeyProvider(slot=7, kind="kms", error=KeyUnavailableError("KMS unreachable"))
    with pytest.raises(KeyUnavailableError, match="KMS unreachable"):
        await fake.get_key({"type": "sideroKMS"})
    assert fake.calls == [("get_key", {"type": "sideroKMS"})]


async def test_conformance_check_catches_a_broken_provider() -> None:
    broken = FakeKeyProvider(slot=0, token={"type": "x", "keyslots": [], "UserData": {}})
    with pytest.raises(AssertionError, match="must not return a token"):
        await check_provider_conformance(broken, sealed=False)

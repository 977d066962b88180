from collections.abc import Mapping
from typing import Any

import pytest

from volumed.keys import (
    DiskSalt,
    KeyKind,
    KeyUnavailableError,
    LockedToStateKeyProvider,
    NewKey,
    NodeIDKeyProvider,
    Passphrase,
    StaticKeyProvider,
)

SALT = DiskSalt(bytes(range(100, 132)))


class SealingProvider:
    """A sealed kind in miniature: the token carries the unsalted key, as a kms/tpm token seals it."""

    slot = 2
    kind: KeyKind = "kms"

    async def new_key(self) -> NewKey:
        return NewKey(
            Passphrase(b"inner-key"), {"type": "fake", "keyslots": [], "UserData": {"k": "inner-key"}}
        )

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        assert token is not None
        return Passphrase(token["UserData"]["k"].encode())


async def test_passphrase_is_inner_then_salt_raw() -> None:
    inner = StaticKeyProvider(slot=1, passphrase=b"pass")
    locked = LockedToStateKeyProvider(inner, SALT)
    assert (locked.slot, locked.kind, locked.inner) == (1, "static", inner)
    assert (await locked.get_key(None)).reveal() == b"pass" + bytes(range(100, 132))
    assert (await locked.new_key()).passphrase.reveal() == b"pass" + bytes(range(100, 132))


async def test_node_id_locked_vector() -> None:
    uuid = "12345678-1234-5678-1234-567812345678"
    locked = LockedToStateKeyProvider(NodeIDKeyProvider(slot=0, node_uuid=uuid, volume_id="u-data"), SALT)
    assert (await locked.get_key(None)).reveal() == (uuid + "u-data").encode() + SALT.reveal()


async def test_token_seals_the_unsalted_key() -> None:
    locked = LockedToStateKeyProvider(SealingProvider(), SALT)
    key = await locked.new_key()
    assert key.token == {"type": "fake", "keyslots": [], "UserData": {"k": "inner-key"}}
    assert key.passphrase.reveal() == b"inner-key" + SALT.reveal()
    assert await locked.get_key(key.token) == key.passphrase


async def test_without_salt_the_key_is_unavailable() -> None:
    locked = LockedToStateKeyProvider(StaticKeyProvider(slot=4, passphrase=b"pass"), None)
    message = "static key for slot 4 is locked to STATE: the STATE salt is not available yet"
    with pytest.raises(KeyUnavailableError, match=f"^{message}$"):
        await locked.get_key(None)
    with pytest.raises(KeyUnavailableError, match=f"^{message}$"):
        await locked.new_key()

"""The KeyProvider contract as an executable check, run against every provider (style: one conformance suite
per protocol)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, get_args

import anyio

from .._provider import KeyKind, NewKey
from .._secret import Passphrase
from .._tokens import token_to_json

if TYPE_CHECKING:
    from .._provider import KeyProvider


async def check_provider_conformance(provider: KeyProvider, *, sealed: bool) -> None:
    """Assert that ``provider`` keeps the :class:`~volumed.keys.KeyProvider` contract; raises AssertionError.

    Checked: ``slot``/``kind``; ``new_key`` returns a :class:`NewKey` with a token (``sealed`` kinds) or
    none (others); the token is JSON in Talos' key order and survives a compact JSON round trip; ``get_key``
    of that token gives the same passphrase; sealed kinds make a fresh key per call, the others the same one;
    the passphrase shows in no repr; a call cancelled before it starts leaves the provider usable.

    Args:
        provider: the provider under test (its key source must be up).
        sealed: whether this kind stores a token (kms, tpm) or recomputes its key (static, nodeID).
    """
    assert isinstance(provider.slot, int)
    assert 0 <= provider.slot < 32, f"slot {provider.slot} out of LUKS2's 0..31"
    assert provider.kind in get_args(KeyKind), provider.kind

    first = await provider.new_key()
    assert isinstance(first, NewKey)
    assert isinstance(first.passphrase, Passphrase)
    assert len(first.passphrase) > 0
    if sealed:
        assert first.token is not None, "a sealed kind must return a token"
        assert list(first.token)[:3] == ["type", "keyslots", "UserData"], list(first.token)
        assert first.token["keyslots"] == []
        stored = json.loads(token_to_json(first.token))  # what cryptsetup would store and give back
    else:
        assert first.token is None, "a recomputed kind must not return a token"
        stored = None
    assert await provider.get_key(stored) == first.passphrase

    second = await provider.new_key()
    if sealed:
        assert second.passphrase != first.passphrase, "sealed kinds must make a fresh key per new_key()"
        assert second.token != first.token
    else:
        assert second.passphrase == first.passphrase

    secret = first.passphrase.reveal()
    for text in (repr(provider), str(provider), repr(first), str(first), repr(first.passphrase)):
        assert secret.hex() not in text
        if secret.isascii():
            assert secret.decode() not in text, "the passphrase shows in a repr"

    with anyio.CancelScope() as scope:
        scope.cancel()
        await provider.get_key(stored)
    assert scope.cancelled_caught, "get_key() must be cancellable"
    assert await provider.get_key(stored) == first.passphrase, "a cancelled call broke the provider"

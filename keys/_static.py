"""The static key kind: a passphrase written in the config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

import anyio.lowlevel

from ._provider import KeyKind, NewKey
from ._secret import Passphrase

if TYPE_CHECKING:
    from collections.abc import Mapping


@final
class StaticKeyProvider:
    """Returns the configured passphrase; no token (Talos stores none for static keys).

    Threat model: the passphrase is wherever the config is. For STATE it is also kept in clear in META
    (tag 9), next to the encrypted partition, so a static STATE key protects nothing against someone
    holding the disk.

    Args:
        slot: the LUKS2 key slot.
        passphrase: the configured bytes (Talos' ``static.passphrase``).
    """

    __slots__ = ("_passphrase", "_slot")

    def __init__(self, *, slot: int, passphrase: Passphrase | bytes) -> None:
        if not isinstance(passphrase, Passphrase):
            passphrase = Passphrase(passphrase)
        if len(passphrase) == 0:
            raise ValueError(f"static key for slot {slot}: the passphrase is empty")
        self._slot = slot
        self._passphrase = passphrase

    @property
    def slot(self) -> int:
        return self._slot

    @property
    def kind(self) -> KeyKind:
        return "static"

    async def new_key(self) -> NewKey:
        await anyio.lowlevel.checkpoint()
        return NewKey(self._passphrase)

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        await anyio.lowlevel.checkpoint()
        return self._passphrase

    def __repr__(self) -> str:
        return f"StaticKeyProvider(slot={self._slot})"

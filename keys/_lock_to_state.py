"""lockToSTATE: any key kind, with the STATE salt appended to its passphrase."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from ._errors import KeyUnavailableError
from ._provider import KeyKind, KeyProvider, NewKey
from ._secret import Passphrase

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._salt import DiskSalt


def salted(passphrase: Passphrase, salt: DiskSalt) -> Passphrase:
    """``passphrase || salt``, raw concatenation: the LUKS2 KDF does the stretching (Talos' formula)."""
    return Passphrase(passphrase.reveal() + salt.reveal())


@final
class LockedToStateKeyProvider:
    """Wraps a provider so the slot opens only with this node's STATE mounted.

    The inner provider's token (kms, tpm) seals the unsalted key, exactly as Talos does; only the passphrase
    handed to LUKS carries the salt. Without a salt (STATE not mounted yet) both calls raise
    :class:`~volumed.keys.KeyUnavailableError`, so the volume waits for STATE.

    Threat model: wiping or replacing STATE makes the volume unopenable even with the inner key, which ties
    user volumes to one installation of the node.

    Args:
        inner: the provider of the unsalted key.
        salt: the STATE salt, or ``None`` when STATE is not mounted yet.
    """

    __slots__ = ("_inner", "_salt")

    def __init__(self, inner: KeyProvider, salt: DiskSalt | None) -> None:
        self._inner = inner
        self._salt = salt

    @property
    def inner(self) -> KeyProvider:
        """The provider of the unsalted key."""
        return self._inner

    @property
    def slot(self) -> int:
        return self._inner.slot

    @property
    def kind(self) -> KeyKind:
        return self._inner.kind

    async def new_key(self) -> NewKey:
        salt = self._require_salt()
        key = await self._inner.new_key()
        return NewKey(salted(key.passphrase, salt), key.token)

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        salt = self._require_salt()
        return salted(await self._inner.get_key(token), salt)

    def _require_salt(self) -> DiskSalt:
        if self._salt is None:
            raise KeyUnavailableError(
                f"{self.kind} key for slot {self.slot} is locked to STATE: "
                "the STATE salt is not available yet"
            )
        return self._salt

    def __repr__(self) -> str:
        return f"LockedToStateKeyProvider({self._inner!r})"

"""The key provider protocol: what every key kind (static, nodeID, kms, tpm) offers for one LUKS2 slot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, final

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._secret import Passphrase

KeyKind: TypeAlias = Literal["static", "nodeID", "kms", "tpm"]
"""The key kinds of a volume's encryption config, spelled as Talos reports them in a volume status."""

TokenJSON: TypeAlias = dict[str, Any]
"""A LUKS2 token as a JSON object (``{"type": ..., "keyslots": [...], ...}``), ready for ``json.dumps``."""


@final
@dataclass(frozen=True, slots=True, repr=False)
class NewKey:
    """A freshly made key for a slot: the passphrase and, for sealed kinds, the token to store next to it.

    Attributes:
        passphrase: what the slot will be unlocked with.
        token: the LUKS2 token to import at token id == slot before the slot is added (kms, tpm); ``None`` for
            kinds that can recompute the passphrase from config (static, nodeID).
    """

    passphrase: Passphrase
    token: TokenJSON | None = None

    def __repr__(self) -> str:
        kind = "None" if self.token is None else f"<{self.token.get('type')!s} token>"
        return f"NewKey(passphrase={self.passphrase!r}, token={kind})"


class KeyProvider(Protocol):
    """Produces the passphrase of one key slot of one volume.

    Contract:
        * Both methods are coroutines with at least one checkpoint, safe to cancel at any await point; a
          cancelled call leaves nothing behind (no half-written file, no open channel).
        * Neither method retries: a failure raises a :class:`~volumed.keys.KeyProviderError` subclass at once
          and the caller decides (Talos tries the next slot and retries the volume on a timer).
        * Neither method enforces a time limit itself: wrap the provider with
          :func:`~volumed.keys.with_time_limit` (Talos allows 20 s per handler).
        * Blocking work (file I/O, a TPM command) runs in a worker thread; the event loop is never stalled.
        * Errors never contain key material; the passphrase is a :class:`~volumed.keys.Passphrase`.
    """

    @property
    def slot(self) -> int:
        """The LUKS2 key slot this provider serves; its token, if any, lives at token id == slot."""
        ...

    @property
    def kind(self) -> KeyKind:
        """The key kind, as configured."""
        ...

    async def new_key(self) -> NewKey:
        """Make the key for a slot being created (at format, or when the slot is added during key sync).

        Sealed kinds (kms, tpm) make a fresh random key on every call.
        """
        ...

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        """Recover the passphrase of an existing slot (at open, or to check a slot during key sync).

        Args:
            token: the LUKS2 token stored at token id == slot, or ``None`` when there is none. Kinds without
                a token ignore it; sealed kinds raise :class:`~volumed.keys.InvalidTokenError` when it is
                missing or not theirs.
        """
        ...

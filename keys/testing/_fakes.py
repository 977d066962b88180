"""Fake key providers for tests of the code that uses providers (KeyResolver, formatter, key sync)."""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING, Any, final

import anyio
import anyio.lowlevel

from .._provider import KeyKind, NewKey
from .._secret import Passphrase
from .._tokens import make_token, token_bytes_field, token_user_data

if TYPE_CHECKING:
    from collections.abc import Mapping

FAKE_TOKEN_TYPE = "volumed-fake-sealed"
"""Token type of :class:`FakeSealingKeyProvider`. Its token holds the key in clear: tests only."""


@final
class FakeKeyProvider:
    """A provider that returns a fixed passphrase, or fails, or stalls, as a test arranges.

    Args:
        slot: the slot it serves.
        kind: the kind it reports.
        passphrase: what ``new_key``/``get_key`` return.
        token: the token ``new_key`` returns (``None`` like static/nodeID).
        error: raised by every call instead of answering (e.g. ``KeyUnavailableError("KMS unreachable")``).
        delay: seconds each call sleeps first (for time-limit and cancellation tests).

    Attributes:
        calls: ``("new_key", None)`` / ``("get_key", token)`` per call, in order.
    """

    def __init__(
        self,
        *,
        slot: int = 0,
        kind: KeyKind = "static",
        passphrase: bytes = b"fake-passphrase",
        token: dict[str, Any] | None = None,
        error: Exception | None = None,
        delay: float = 0.0,
    ) -> None:
        self._slot = slot
        self._kind: KeyKind = kind
        self.passphrase = Passphrase(passphrase)
        self.token = token
        self.error = error
        self.delay = delay
        self.calls: list[tuple[str, Mapping[str, Any] | None]] = []

    @property
    def slot(self) -> int:
        return self._slot

    @property
    def kind(self) -> KeyKind:
        return self._kind

    async def new_key(self) -> NewKey:
        self.calls.append(("new_key", None))
        await self._behave()
        return NewKey(self.passphrase, None if self.token is None else dict(self.token))

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        self.calls.append(("get_key", token))
        await self._behave()
        return self.passphrase

    async def _behave(self) -> None:
        if self.delay:
            await anyio.sleep(self.delay)
        else:
            await anyio.lowlevel.checkpoint()
        if self.error is not None:
            raise self.error

    def __repr__(self) -> str:
        return f"FakeKeyProvider(slot={self._slot}, kind={self._kind!r})"


@final
class FakeSealingKeyProvider:
    """Behaves like a sealed kind (kms, tpm): a fresh random key per ``new_key``, recovered from its token.

    The token (type ``volumed-fake-sealed``) carries the key in clear, so it needs no KMS or TPM; never use it
    outside tests.
    """

    def __init__(self, *, slot: int = 0, kind: KeyKind = "kms") -> None:
        self._slot = slot
        self._kind: KeyKind = kind

    @property
    def slot(self) -> int:
        return self._slot

    @property
    def kind(self) -> KeyKind:
        return self._kind

    async def new_key(self) -> NewKey:
        await anyio.lowlevel.checkpoint()
        key = secrets.token_bytes(32)
        token = make_token(FAKE_TOKEN_TYPE, {"key": base64.b64encode(key).decode("ascii")})
        return NewKey(Passphrase(base64.b64encode(key)), token)

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        await anyio.lowlevel.checkpoint()
        user_data = token_user_data(token, FAKE_TOKEN_TYPE, slot=self._slot)
        key = token_bytes_field(user_data, "key", token_type=FAKE_TOKEN_TYPE, slot=self._slot)
        return Passphrase(base64.b64encode(key))

    def __repr__(self) -> str:
        return f"FakeSealingKeyProvider(slot={self._slot}, kind={self._kind!r})"

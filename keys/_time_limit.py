"""A time limit around any key provider, so one slow key source cannot hold up the others."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

import anyio

from ._errors import KeyTimeoutError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._provider import KeyKind, KeyProvider, NewKey
    from ._secret import Passphrase

DEFAULT_TIME_LIMIT = 20.0
"""Seconds per call, as Talos allows each key handler."""


@final
class TimeLimitedKeyProvider:
    """Runs each call of the wrapped provider in a cancel scope with a deadline and reports an overrun as
    :class:`~volumed.keys.KeyTimeoutError` naming the kind, the slot and the limit.

    Only the wrapper's own deadline becomes KeyTimeoutError; a ``TimeoutError`` raised inside the provider, or
    a cancellation from outside, passes through unchanged.

    Build it with :func:`with_time_limit`.
    """

    __slots__ = ("_inner", "_seconds")

    def __init__(self, inner: KeyProvider, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"time limit must be positive, got {seconds}")
        self._inner = inner
        self._seconds = seconds

    @property
    def inner(self) -> KeyProvider:
        """The wrapped provider."""
        return self._inner

    @property
    def seconds(self) -> float:
        """The limit per call."""
        return self._seconds

    @property
    def slot(self) -> int:
        return self._inner.slot

    @property
    def kind(self) -> KeyKind:
        return self._inner.kind

    async def new_key(self) -> NewKey:
        with anyio.move_on_after(self._seconds):
            return await self._inner.new_key()
        raise self._timeout("making a new key")

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        with anyio.move_on_after(self._seconds):
            return await self._inner.get_key(token)
        raise self._timeout("getting the key")

    def _timeout(self, what: str) -> KeyTimeoutError:
        return KeyTimeoutError(
            f"{self.kind} key for slot {self.slot}: {what} took longer than {self._seconds:g} s"
        )

    def __repr__(self) -> str:
        return f"TimeLimitedKeyProvider({self._inner!r}, seconds={self._seconds:g})"


def with_time_limit(provider: KeyProvider, seconds: float = DEFAULT_TIME_LIMIT) -> TimeLimitedKeyProvider:
    """Wrap ``provider`` so each ``new_key``/``get_key`` call fails with KeyTimeoutError after ``seconds``."""
    return TimeLimitedKeyProvider(provider, seconds)

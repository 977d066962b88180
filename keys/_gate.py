"""A gate around key providers whose keys may be used only during a window of the boot.

TPM keys under Talos' signed PCR 11 policy unseal only between the ``enter-machined`` and ``start-the-world``
boot phases. Whoever closes the window (extends PCR 11) closes the gate first and waits until no key call is
in flight, so a seal or an unseal is never cut in two by the phase change; later calls fail at once with the
gate's reason instead of a TPM policy error.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, final

import anyio

from ._errors import KeyUnavailableError


class GateClosedError(KeyUnavailableError):
    """The key's window is closed for the rest of the boot (see :class:`KeyGate`): nothing was asked of the
    key source, so a failure it gave earlier still stands."""


if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from ._provider import KeyKind, KeyProvider, NewKey
    from ._secret import Passphrase


@final
class KeyGate:
    """Open until :meth:`close`; :meth:`hold` marks a key call in flight. One event loop only."""

    __slots__ = ("_drained", "_holders", "_reason")

    def __init__(self, *, closed: str = "") -> None:
        """``closed``: a gate closed from the start, with that reason (a window this boot never had)."""
        self._holders = 0
        self._reason: str | None = closed or None
        self._drained = anyio.Event()
        self._drained.set()

    @property
    def closed(self) -> bool:
        return self._reason is not None

    @property
    def reason(self) -> str:
        """Why the gate is closed (empty while it is open)."""
        return self._reason or ""

    @asynccontextmanager
    async def hold(self, what: str) -> AsyncIterator[None]:
        """Keep the gate from closing while the body runs.

        Raises:
            GateClosedError: the gate is closed (or closing), with its reason; ``what`` names the key.
        """
        if self._reason is not None:
            raise GateClosedError(f"{what}: {self._reason}")
        if self._holders == 0:
            self._drained = anyio.Event()
        self._holders += 1
        try:
            yield
        finally:
            self._holders -= 1
            if self._holders == 0:
                self._drained.set()

    async def close(self, reason: str) -> None:
        """Refuse new holders with ``reason`` and wait until the calls in flight have returned."""
        if not reason:
            raise ValueError("a closed gate needs a reason")
        if self._reason is None:
            self._reason = reason
        await self._drained.wait()

    def __repr__(self) -> str:
        state = f"closed: {self._reason}" if self._reason is not None else "open"
        return f"KeyGate({state}, in flight={self._holders})"


@final
class GatedKeyProvider:
    """A provider whose calls each hold ``gate`` (see :class:`KeyGate`)."""

    __slots__ = ("_gate", "_gates", "_inner")

    def __init__(
        self,
        inner: KeyProvider,
        gate: KeyGate,
        *,
        gates: Callable[[Mapping[str, Any] | None], bool] | None = None,
    ) -> None:
        """``gates``: whether unlocking with a given token needs the window (default: always); a new key
        always does."""
        self._inner = inner
        self._gate = gate
        self._gates = gates

    @property
    def inner(self) -> KeyProvider:
        """The wrapped provider."""
        return self._inner

    @property
    def slot(self) -> int:
        return self._inner.slot

    @property
    def kind(self) -> KeyKind:
        return self._inner.kind

    async def new_key(self) -> NewKey:
        async with self._gate.hold(self._what()):
            return await self._inner.new_key()

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        if self._gates is not None and not self._gates(token):
            return await self._inner.get_key(token)
        async with self._gate.hold(self._what()):
            return await self._inner.get_key(token)

    def _what(self) -> str:
        return f"{self.kind} key for slot {self.slot}"

    def __repr__(self) -> str:
        return f"GatedKeyProvider({self._inner!r}, {self._gate!r})"

"""KeyGate: key calls in flight finish before the window closes; later calls fail with the gate's reason."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

from volumed.keys import GatedKeyProvider, KeyGate, KeyKind, KeyUnavailableError, NewKey, Passphrase

if TYPE_CHECKING:
    from collections.abc import Mapping


class SlowProvider:
    """A key source whose unseal waits for ``release`` (a TPM command in flight)."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.release = anyio.Event()
        self.calls = 0

    @property
    def slot(self) -> int:
        return 3

    @property
    def kind(self) -> KeyKind:
        return "tpm"

    async def new_key(self) -> NewKey:
        raise AssertionError("these tests only unlock: no new key is ever asked for")

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        return Passphrase(b"k" * 32)


async def test_close_waits_for_the_call_in_flight_and_refuses_later_calls() -> None:
    inner = SlowProvider()
    gate = KeyGate()
    provider = GatedKeyProvider(inner, gate)
    order: list[str] = []
    async with anyio.create_task_group() as tg:

        async def unseal() -> None:
            await provider.get_key(None)
            order.append("unsealed")

        async def close() -> None:
            await inner.started.wait()
            await gate.close("window closed for this boot")
            order.append("closed")

        tg.start_soon(unseal)
        tg.start_soon(close)
        await inner.started.wait()
        await anyio.sleep(0.05)
        assert gate.closed
        assert order == []
        inner.release.set()
    assert order == ["unsealed", "closed"]
    with pytest.raises(KeyUnavailableError, match=r"^tpm key for slot 3: window closed for this boot$"):
        await provider.get_key(None)
    assert inner.calls == 1


async def test_an_open_gate_closes_at_once_and_keeps_its_first_reason() -> None:
    gate = KeyGate()
    await gate.close("first")
    await gate.close("second")
    assert gate.reason == "first"
    with pytest.raises(ValueError, match="needs a reason"):
        await KeyGate().close("")


def test_the_gated_provider_is_looked_through_by_inner() -> None:
    inner = SlowProvider()
    provider = GatedKeyProvider(inner, KeyGate())
    assert provider.inner is inner
    assert (provider.slot, provider.kind) == (3, "tpm")
    assert "open" in repr(provider)

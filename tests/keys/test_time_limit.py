from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from volumed.keys import (
    DEFAULT_TIME_LIMIT,
    KeyKind,
    KeyTimeoutError,
    NewKey,
    Passphrase,
    StaticKeyProvider,
    with_time_limit,
)


class SlowProvider:
    slot = 5
    kind: KeyKind = "kms"

    def __init__(self, delay: float, error: Exception | None = None) -> None:
        self.delay = delay
        self.error = error

    async def new_key(self) -> NewKey:
        await anyio.sleep(self.delay)
        return NewKey(Passphrase(b"k"))

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        await anyio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return Passphrase(b"k")


async def test_fast_calls_pass_through() -> None:
    limited = with_time_limit(StaticKeyProvider(slot=1, passphrase=b"x"), 1.0)
    assert (limited.slot, limited.kind, limited.seconds) == (1, "static", 1.0)
    assert await limited.get_key(None) == Passphrase(b"x")
    assert (await limited.new_key()).passphrase == Passphrase(b"x")


async def test_overrun_becomes_key_timeout_error() -> None:
    limited = with_time_limit(SlowProvider(10), 0.05)
    with anyio.fail_after(2):
        with pytest.raises(
            KeyTimeoutError, match=r"^kms key for slot 5: getting the key took longer than 0.05 s$"
        ):
            await limited.get_key(None)
        with pytest.raises(KeyTimeoutError, match=r"making a new key took longer than 0\.05 s"):
            await limited.new_key()


async def test_inner_timeout_error_is_not_rewritten() -> None:
    limited = with_time_limit(SlowProvider(0, TimeoutError("socket timed out")), 5)
    with pytest.raises(TimeoutError, match="socket timed out") as info:
        await limited.get_key(None)
    assert not isinstance(info.value, KeyTimeoutError)


async def test_outer_cancellation_passes_through() -> None:
    limited = with_time_limit(SlowProvider(10), 5)
    with anyio.move_on_after(0.05) as scope:
        await limited.get_key(None)
    assert scope.cancelled_caught


def test_default_is_talos_20_seconds_and_limit_must_be_positive() -> None:
    assert DEFAULT_TIME_LIMIT == 20.0
    with pytest.raises(ValueError, match="must be positive"):
        with_time_limit(StaticKeyProvider(slot=1, passphrase=b"x"), 0)

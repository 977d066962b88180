"""Secret bytes whose value never shows in a repr, a str, a log line or an exception text."""

from __future__ import annotations

import hmac
from typing import final


@final
class Passphrase:
    """The bytes that unlock one LUKS2 key slot.

    The value is only reachable through :meth:`reveal`, so that handing a passphrase to a logger, an f-string
    or an exception message prints a placeholder instead of key material. Equality is constant-time. Instances
    are immutable and unhashable (a hash of a secret is an oracle nobody needs).

    Args:
        value: the passphrase bytes; may be empty only for tests of the caller's own checks.
    """

    __slots__ = ("_value",)
    __hash__ = None  # type: ignore[assignment]

    _value: bytes

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"Passphrase needs bytes, got {type(value).__name__}")
        object.__setattr__(self, "_value", bytes(value))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Passphrase is immutable")

    def reveal(self) -> bytes:
        """Return the secret bytes, for the one call that must consume them (a KDF, a seal)."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Passphrase):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __repr__(self) -> str:
        return "Passphrase(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Passphrase is not picklable (it would copy key material)")

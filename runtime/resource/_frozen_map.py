"""An immutable string mapping for labels and annotations, shared between resource versions without copies."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import final


@final
class FrozenMap(Mapping[str, str]):
    """A read-only ``str -> str`` mapping.

    Metadata is shared by every event and watcher that sees a resource, so its labels must not change under
    them; a ``FrozenMap`` owns a private copy of the items and never exposes it.
    """

    __slots__ = ("_hash", "_items")

    _items: dict[str, str]
    _hash: int | None

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        copied = dict(items) if items else {}
        for key, value in copied.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"labels and annotations map str to str, got {key!r}: {type(value).__name__}")
        object.__setattr__(self, "_items", copied)
        object.__setattr__(self, "_hash", None)

    @classmethod
    def of(cls, items: Mapping[str, str] | None) -> FrozenMap:
        """Return ``items`` itself when it is already frozen, else a frozen copy (empty maps are shared)."""
        if items is None:
            return _EMPTY
        if items.__class__ is FrozenMap:  # not isinstance: an ABC check costs more than the rest
            return items
        if not items:
            return _EMPTY
        return cls(items)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("FrozenMap is immutable")

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(frozenset(self._items.items())))
        assert self._hash is not None
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"

    def __reduce__(self) -> tuple[type[FrozenMap], tuple[dict[str, str]]]:
        # copy/pickle would otherwise restore the slots through __setattr__, which refuses.
        return (FrozenMap, (self._items,))

    def set(self, key: str, value: str) -> FrozenMap:
        """Return a copy with ``key`` set to ``value``."""
        items = dict(self._items)
        items[key] = value
        return FrozenMap(items)

    def without(self, key: str) -> FrozenMap:
        """Return a copy without ``key`` (the same map when the key is absent)."""
        if key not in self._items:
            return self
        items = dict(self._items)
        del items[key]
        return FrozenMap(items)

    def to_dict(self) -> dict[str, str]:
        """Return a fresh, mutable copy."""
        return dict(self._items)


_EMPTY = FrozenMap()

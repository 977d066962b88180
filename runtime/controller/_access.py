"""What a controller may read, write and hold finalizers on, computed once from its declarations."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from ._io import Input, InputKind, Output

if TYPE_CHECKING:
    from collections.abc import Sequence

_ALL = None  # every id of a kind


@final
class AccessRules:
    """Lookup tables over a controller's declared inputs and outputs (checked on every read and write)."""

    __slots__ = ("_finalizable", "_readable", "_writable", "name")

    def __init__(self, name: str, inputs: Sequence[Input], outputs: Sequence[Output]) -> None:
        self.name = name
        # (namespace, type) -> None for the whole kind, or the set of ids declared.
        self._readable: dict[tuple[str, str], set[str] | None] = {}
        self._finalizable: dict[tuple[str, str], set[str] | None] = {}
        self._writable: set[tuple[str, str]] = set()
        for inp in inputs:
            _grant(self._readable, (inp.namespace, inp.type), inp.id)
            if inp.kind is InputKind.STRONG:
                _grant(self._finalizable, (inp.namespace, inp.type), inp.id)
        for out in outputs:
            _grant(self._readable, (out.namespace, out.type), _ALL)
            self._writable.add((out.namespace, out.type))

    def can_read(self, namespace: str, type_: str, id_: str) -> bool:
        """Whether one resource may be read."""
        return _allows(self._readable, (namespace, type_), id_)

    def readable_ids(self, namespace: str, type_: str) -> set[str] | None:
        """For a list of a kind: None when the whole kind is readable, else the ids that are.

        Raises KeyError when nothing of the kind is readable.
        """
        return self._readable[(namespace, type_)]

    def can_write(self, namespace: str, type_: str) -> bool:
        """Whether resources of the kind may be created, updated, torn down or destroyed."""
        return (namespace, type_) in self._writable

    def can_finalize(self, namespace: str, type_: str, id_: str) -> bool:
        """Whether a finalizer may be put on (or removed from) one resource (strong inputs only)."""
        return _allows(self._finalizable, (namespace, type_), id_)


def _grant(table: dict[tuple[str, str], set[str] | None], key: tuple[str, str], id_: str | None) -> None:
    if id_ is None:
        table[key] = _ALL
        return
    if key in table:
        ids = table[key]
        if ids is not None:
            ids.add(id_)
    else:
        table[key] = {id_}


def _allows(table: dict[tuple[str, str], set[str] | None], key: tuple[str, str], id_: str) -> bool:
    ids = table.get(key, _DENIED)
    return ids is None or (ids is not _DENIED and id_ in ids)


_DENIED: set[str] = set()

"""Addresses of resources: a kind (namespace + type) and a pointer (kind + id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

from volumed.runtime._frozen import draft_class

if TYPE_CHECKING:
    from collections.abc import Callable


def _require_name(what: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"resource {what} must be a non-empty string, got {value!r}")


@final
@dataclass(frozen=True, slots=True)
class Kind:
    """A resource type within a namespace: what `list` and `watch_kind` address."""

    namespace: str
    type: str

    def __post_init__(self) -> None:
        namespace: object = self.namespace
        type_name: object = self.type
        if not (type(namespace) is str and namespace and type(type_name) is str and type_name):
            _require_name("namespace", namespace)
            _require_name("type", type_name)

    def pointer(self, id: str) -> Pointer:
        """Return the pointer to resource ``id`` of this kind."""
        return Pointer(self.namespace, self.type, id)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.type}"


class _CachedHash:
    """A slot for a hash computed once; not a dataclass, so the slot is no field of its subclasses."""

    __slots__ = ("_hash",)

    _hash: int


@final
@dataclass(frozen=True, slots=True)
class Pointer(_CachedHash):
    """One resource's address: namespace, type and id.

    Pointers are the keys of controller queues and watch views, hashed several times per change: the hash is
    computed once, with the pointer (it is no field: it differs between processes).
    """

    namespace: str
    type: str
    id: str

    def __post_init__(self) -> None:
        namespace: object = self.namespace
        type_name: object = self.type
        rid: object = self.id
        if not (
            type(namespace) is str
            and namespace
            and type(type_name) is str
            and type_name
            and type(rid) is str
            and rid
        ):
            _require_name("namespace", namespace)
            _require_name("type", type_name)
            _require_name("id", rid)
        object.__setattr__(self, "_hash", hash((namespace, type_name, rid)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pointer):
            return NotImplemented
        return (
            self._hash == other._hash
            and self.id == other.id
            and self.type == other.type
            and self.namespace == other.namespace
        )

    def __reduce__(self) -> tuple[Callable[..., Pointer], tuple[str, str, str]]:
        # Not the slots: string hashes differ between processes, so the cached hash must be recomputed.
        return (Pointer, (self.namespace, self.type, self.id))

    @property
    def kind(self) -> Kind:
        """The namespace and type this pointer belongs to."""
        return Kind(self.namespace, self.type)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.type}/{self.id}"


_PointerDraft = draft_class(Pointer)
_new = object.__new__


def trusted_pointer(namespace: str, type: str, id: str) -> Pointer:
    """A pointer from parts known to be non-empty strings (e.g. read off stored metadata): no checks."""
    pointer: Any = _new(_PointerDraft)
    pointer.namespace = namespace
    pointer.type = type
    pointer.id = id
    pointer._hash = hash((namespace, type, id))
    pointer.__class__ = Pointer
    return pointer  # type: ignore[no-any-return]

"""Cheap construction of frozen dataclasses for the runtime's hot paths.

Metadata, resources, pointers and events are frozen (they are shared by the state, every event and every
watcher) and one of each is built on every write. A frozen dataclass's ``__init__`` pays one call of
``object.__setattr__`` per field: over a microsecond for metadata, more than the rest of an in-memory write.

A *draft class* is a twin subclass of a frozen dataclass that allows assignment. The hot constructors take
an empty draft, fill its slots with plain attribute stores (a few nanoseconds each) and then set its
``__class__`` to the frozen class: the result is an ordinary, immutable instance of it (same layout, same
``__eq__``/``__hash__``/``__repr__``, ``dataclasses.fields`` and ``replace`` still work). Only code that has
already validated every value may build this way; public constructors keep the dataclass's checks.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def draft_class(cls: type[T]) -> type[T]:
    """The assignable twin of the slotted frozen dataclass ``cls`` (create once, at import)."""
    if "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} must be a slotted dataclass to have a draft class")
    namespace: dict[str, Any] = {
        "__slots__": (),
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__module__": cls.__module__,
        "__qualname__": f"{cls.__qualname__}.Draft",
    }
    return type(f"{cls.__name__}Draft", (cls,), namespace)

"""Reads and watches served from a `ResourceIndex`: shared by every backend that keeps its state in memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from volumed.runtime.resource import IDQuery, Kind, LabelQuery, Pointer, Resource

    from ._index import ResourceIndex
    from ._watch import Listener, Watcher


class IndexReads:
    """The read half of `CoreState` over ``self._index`` (backends differ only in how they write)."""

    _index: ResourceIndex

    async def get(self, pointer: Pointer) -> Resource[Any]:
        return self._index.get(pointer)

    async def find(self, pointer: Pointer) -> Resource[Any] | None:
        return self._index.find(pointer)

    async def list(
        self, kind: Kind, *, labels: LabelQuery | None = None, ids: IDQuery | None = None
    ) -> list[Resource[Any]]:
        return self._index.list(kind, labels=labels, ids=ids)

    def listen(self, kind: Kind, listener: Listener) -> Callable[[], None]:
        return self._index.listen(kind, listener)

    def watch(self, pointer: Pointer) -> Watcher:
        return self._index.watch(pointer)

    def watch_kind(
        self,
        kind: Kind,
        *,
        bootstrap: bool = False,
        labels: LabelQuery | None = None,
        ids: IDQuery | None = None,
    ) -> Watcher:
        return self._index.watch_kind(kind, bootstrap=bootstrap, labels=labels, ids=ids)

"""Resource metadata: identity, optimistic-concurrency version, ownership and lifecycle."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, final

from volumed.runtime._frozen import draft_class

from ._frozen_map import FrozenMap
from ._pointer import Kind, Pointer, _require_name, trusted_pointer

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""``created``/``updated`` of a resource that has not been stored yet."""


class Phase(StrEnum):
    """Lifecycle phase: a resource runs until its owner starts tearing it down; it never comes back."""

    RUNNING = "running"
    TEARING_DOWN = "tearingDown"


@final
@dataclass(frozen=True, slots=True)
class Metadata:
    """Everything about a resource except its spec.

    The state owns ``version`` (1 on create, +1 per effective change), ``created``, ``updated``,
    ``owner`` (set once on create), ``phase`` (changed only by teardown) and ``finalizers`` (changed by
    add/remove finalizer); values given for them on update are ignored. ``version`` 0 means "not stored yet".
    """

    namespace: str
    type: str
    id: str
    version: int = 0
    owner: str = ""
    labels: FrozenMap = dataclasses.field(default_factory=FrozenMap)
    annotations: FrozenMap = dataclasses.field(default_factory=FrozenMap)
    finalizers: tuple[str, ...] = ()
    phase: Phase = Phase.RUNNING
    created: datetime = EPOCH
    updated: datetime = EPOCH

    def __post_init__(self) -> None:
        # Fast path first: this runs for every resource a controller builds.
        namespace: object = self.namespace
        type_name: object = self.type
        rid: object = self.id
        if not (type(namespace) is str and namespace and type(type_name) is str and type_name):
            _require_name("namespace", namespace)
            _require_name("type", type_name)
        if not (type(rid) is str and rid):
            _require_name("id", rid)
        # Callers may pass plain dicts/lists/strings; normalise them to the frozen forms.
        labels: object = self.labels
        if type(labels) is not FrozenMap:
            object.__setattr__(self, "labels", FrozenMap.of(self.labels))
        annotations: object = self.annotations
        if type(annotations) is not FrozenMap:
            object.__setattr__(self, "annotations", FrozenMap.of(self.annotations))
        finalizers: object = self.finalizers
        if type(finalizers) is not tuple:
            object.__setattr__(self, "finalizers", tuple(self.finalizers))
        version = self.version
        if type(version) is not int or version < 0:
            raise ValueError(f"resource version must be a non-negative int, got {version!r}")
        phase: object = self.phase
        if type(phase) is not Phase:
            object.__setattr__(self, "phase", Phase(self.phase))

    @classmethod
    def new(
        cls,
        namespace: str,
        type: str,
        id: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        finalizers: Iterable[str] = (),
    ) -> Metadata:
        """Return metadata for a resource about to be created."""
        if not (
            namespace.__class__ is str
            and namespace
            and type.__class__ is str
            and type
            and id.__class__ is str
            and id
        ):
            return cls(
                namespace,
                type,
                id,
                labels=FrozenMap.of(labels),
                annotations=FrozenMap.of(annotations),
                finalizers=tuple(finalizers),
            )  # the constructor's checks name what is wrong
        # Hot path (every resource a controller writes): the checks above are all a new resource needs.
        return build_metadata(
            namespace,
            type,
            id,
            0,
            "",
            FrozenMap.of(labels),
            FrozenMap.of(annotations),
            finalizers if finalizers.__class__ is tuple else tuple(finalizers),
            Phase.RUNNING,
            EPOCH,
            EPOCH,
        )

    @property
    def pointer(self) -> Pointer:
        """This resource's address."""
        return trusted_pointer(self.namespace, self.type, self.id)

    @property
    def kind(self) -> Kind:
        """This resource's namespace and type."""
        return Kind(self.namespace, self.type)

    def replace(self, **changes: Any) -> Metadata:
        """Return a copy with ``changes`` applied (labels/annotations may be plain dicts)."""
        return dataclasses.replace(self, **changes)


_MetadataDraft = draft_class(Metadata)
_new = object.__new__


def build_metadata(
    namespace: str,
    type: str,
    id: str,
    version: int,
    owner: str,
    labels: FrozenMap,
    annotations: FrozenMap,
    finalizers: tuple[str, ...],
    phase: Phase,
    created: datetime,
    updated: datetime,
) -> Metadata:
    """Metadata from values already validated and normalised (the state's and `Metadata.new`'s fast path)."""
    md: Any = _new(_MetadataDraft)
    md.namespace = namespace
    md.type = type
    md.id = id
    md.version = version
    md.owner = owner
    md.labels = labels
    md.annotations = annotations
    md.finalizers = finalizers
    md.phase = phase
    md.created = created
    md.updated = updated
    md.__class__ = Metadata
    return md  # type: ignore[no-any-return]


def evolve_metadata(metadata: Metadata, **changes: Any) -> Metadata:
    """A copy of ``metadata`` with ``changes``, skipping validation (for the state's already-checked values).

    ``dataclasses.replace`` would re-validate every field. Callers must pass values of the declared types
    (FrozenMap, tuple, Phase, ...).
    """
    md = metadata
    get = changes.get
    return build_metadata(
        md.namespace,
        md.type,
        md.id,
        get("version", md.version),
        get("owner", md.owner),
        get("labels", md.labels),
        get("annotations", md.annotations),
        get("finalizers", md.finalizers),
        get("phase", md.phase),
        get("created", md.created),
        get("updated", md.updated),
    )

"""Resource metadata: identity, optimistic-concurrency version, ownership and lifecycle."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, final

from ._frozen_map import FrozenMap
from ._pointer import Kind, Pointer, _require_name

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
        # Hot path (every resource a controller writes): skip the dataclass machinery.
        new = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(new, "namespace", namespace)
        setattr_(new, "type", type)
        setattr_(new, "id", id)
        setattr_(new, "version", 0)
        setattr_(new, "owner", "")
        setattr_(new, "labels", FrozenMap.of(labels))
        setattr_(new, "annotations", FrozenMap.of(annotations))
        setattr_(new, "finalizers", finalizers if finalizers.__class__ is tuple else tuple(finalizers))
        setattr_(new, "phase", Phase.RUNNING)
        setattr_(new, "created", EPOCH)
        setattr_(new, "updated", EPOCH)
        return new

    @property
    def pointer(self) -> Pointer:
        """This resource's address."""
        return Pointer(self.namespace, self.type, self.id)

    @property
    def kind(self) -> Kind:
        """This resource's namespace and type."""
        return Kind(self.namespace, self.type)

    def replace(self, **changes: Any) -> Metadata:
        """Return a copy with ``changes`` applied (labels/annotations may be plain dicts)."""
        return dataclasses.replace(self, **changes)


def evolve_metadata(metadata: Metadata, **changes: Any) -> Metadata:
    """A copy of ``metadata`` with ``changes``, skipping validation (for the state's already-checked values).

    The state derives a new metadata on every write; ``dataclasses.replace`` would re-validate every field.
    Callers must pass values of the declared types (FrozenMap, tuple, Phase, ...).
    """
    new = object.__new__(Metadata)
    setattr_ = object.__setattr__
    get = changes.get
    md = metadata
    setattr_(new, "namespace", md.namespace)
    setattr_(new, "type", md.type)
    setattr_(new, "id", md.id)
    setattr_(new, "version", get("version", md.version))
    setattr_(new, "owner", get("owner", md.owner))
    setattr_(new, "labels", get("labels", md.labels))
    setattr_(new, "annotations", get("annotations", md.annotations))
    setattr_(new, "finalizers", get("finalizers", md.finalizers))
    setattr_(new, "phase", get("phase", md.phase))
    setattr_(new, "created", get("created", md.created))
    setattr_(new, "updated", get("updated", md.updated))
    return new

"""Declared inputs and outputs: the contract of a controller with the state, enforced by its context."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import final


class InputKind(enum.Enum):
    """How a controller depends on an input type.

    - ``WEAK``: read it, and be woken when it changes.
    - ``STRONG``: as weak, and may hold finalizers on it, so its owner cannot destroy it before this
      controller has cleaned up what it derived from it.
    - ``DESTROY_READY``: be woken only when a resource of it is tearing down and has no finalizers left (the
      moment its owner may destroy it); the usual input of an owner for its own outputs.
    """

    WEAK = "weak"
    STRONG = "strong"
    DESTROY_READY = "destroyReady"


class OutputKind(enum.Enum):
    """How a controller owns an output type.

    - ``EXCLUSIVE``: this controller is the only writer of the type; a second exclusive (or any shared)
      claim on it is refused at registration.
    - ``SHARED``: several controllers write the type; each may only update or destroy what it created (the
      owner stamp decides).
    """

    EXCLUSIVE = "exclusive"
    SHARED = "shared"


@final
@dataclass(frozen=True, slots=True)
class Input:
    """A declared input: what a controller reads and what wakes it.

    Args:
        namespace: namespace of the input resources.
        type: resource type name (e.g. ``VolumeConfigs.block.volumed.dev``).
        id: restrict the input to one resource id; None takes the whole type.
        kind: weak, strong or destroy-ready (see `InputKind`).
    """

    namespace: str
    type: str
    id: str | None = None
    kind: InputKind = InputKind.WEAK

    def __post_init__(self) -> None:
        _check_name("Input.namespace", self.namespace)
        _check_name("Input.type", self.type)
        if self.id is not None:
            _check_name("Input.id", self.id)
        if not isinstance(self.kind, InputKind):
            raise TypeError(f"Input.kind must be an InputKind, got {self.kind!r}")

    def matches(self, namespace: str, type: str, id: str | None = None) -> bool:
        """Whether a resource (or, with ``id`` None, a whole kind) falls under this input."""
        if namespace != self.namespace or type != self.type:
            return False
        return id is None or self.id is None or id == self.id


@final
@dataclass(frozen=True, slots=True)
class Output:
    """A declared output: a resource type a controller creates, updates and destroys.

    Args:
        type: resource type name.
        kind: exclusive or shared (see `OutputKind`).
        namespace: namespace the outputs live in (COSI declared outputs by type only; here a controller's
            writes are confined to one namespace too).
    """

    type: str
    kind: OutputKind = OutputKind.EXCLUSIVE
    namespace: str = "default"

    def __post_init__(self) -> None:
        _check_name("Output.type", self.type)
        _check_name("Output.namespace", self.namespace)
        if not isinstance(self.kind, OutputKind):
            raise TypeError(f"Output.kind must be an OutputKind, got {self.kind!r}")

    def matches(self, namespace: str, type: str) -> bool:
        """Whether a resource of ``namespace``/``type`` falls under this output."""
        return namespace == self.namespace and type == self.type


def _check_name(what: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")

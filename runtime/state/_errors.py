"""One error hierarchy raised by every state backend, classified by meaning (cosi pkg/state/errors.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from volumed.runtime.resource import Phase, Pointer


class StateError(Exception):
    """Base of every error a state backend raises on purpose; ``pointer`` names the resource concerned."""

    def __init__(self, message: str, pointer: Pointer | None = None) -> None:
        super().__init__(message)
        self.pointer = pointer


class NotFoundError(StateError):
    """The resource does not exist (never raised for an unknown *type*: listing it just returns nothing)."""

    # Raised on every get-or-create path, so the message is built only when someone reads it.
    def __init__(self, pointer: Pointer) -> None:
        Exception.__init__(self, pointer)
        self.pointer = pointer

    def __str__(self) -> str:
        return f"resource {self.pointer} does not exist"


class AlreadyExistsError(StateError):
    """Create found a resource with the same pointer (whatever its phase)."""

    def __init__(self, pointer: Pointer) -> None:
        super().__init__(f"resource {pointer} already exists", pointer)


class ConflictError(StateError):
    """Optimistic concurrency: the update was based on a version that is no longer the stored one.

    Re-read and retry (`update_with_conflicts` and `modify` do so). Owner and phase conflicts are *not*
    ConflictErrors: retrying would not help them.
    """

    def __init__(self, pointer: Pointer, *, expected: int, stored: int) -> None:
        super().__init__(
            f"resource {pointer} was updated concurrently: "
            f"update based on version {expected}, stored {stored}",
            pointer,
        )
        self.expected = expected
        self.stored = stored


class OwnerConflictError(StateError):
    """The caller is not the resource's owner (owners are set on create and never change)."""

    def __init__(self, pointer: Pointer, *, owner: str, caller: str) -> None:
        super().__init__(
            f"resource {pointer} is owned by {owner or '<no owner>'!s}, not by {caller or '<no owner>'!s}",
            pointer,
        )
        self.owner = owner
        self.caller = caller


class PhaseConflictError(StateError):
    """The resource is not in the phase the update expects (a tearing-down resource is not resurrected)."""

    def __init__(self, pointer: Pointer, *, expected: Phase, actual: Phase) -> None:
        super().__init__(
            f"resource {pointer} is in phase {actual.value}, the operation expects {expected.value}", pointer
        )
        self.expected = expected
        self.actual = actual


class PendingFinalizersError(StateError):
    """Destroy refused: finalizers remain (tear down and wait for their holders to remove them)."""

    def __init__(self, pointer: Pointer, finalizers: tuple[str, ...]) -> None:
        super().__init__(f"resource {pointer} has pending finalizers: {', '.join(finalizers)}", pointer)
        self.finalizers = finalizers


class InvalidResourceError(StateError):
    """The resource given is malformed for this state (wrong spec model for its type, unknown type...)."""


class SensitiveResourceError(StateError):
    """An unprivileged caller asked for a sensitive resource type through a `SensitiveGuard`."""

    def __init__(self, type_name: str) -> None:
        super().__init__(f"resource type {type_name} is sensitive: only a privileged caller may read it")
        self.type_name = type_name


class StateClosedError(StateError):
    """The state backend was closed; watches end with one ERRORED event carrying this error."""

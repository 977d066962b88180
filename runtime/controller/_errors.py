"""Errors of the controller runtime (state errors live in `volumed.runtime.state`)."""

from __future__ import annotations

import math

import anyio


class ControllerError(Exception):
    """Base of the errors the controller runtime raises on purpose."""


class RegistrationError(ControllerError):
    """A controller cannot be registered: duplicate name, conflicting exclusive output, or bad declarations.

    Raised by `Runtime.register` before anything runs; it is a programming error, not a runtime condition.
    """


class UndeclaredAccessError(ControllerError):
    """A controller read or wrote a resource it did not declare (or put a finalizer on a non-strong input).

    Raised inside the reconcile that tried it, so it is counted and retried like any failure; the fix is to
    declare the input or output. It is *not* an owner conflict: writing a declared output owned by someone
    else raises the state's `OwnerConflictError`.
    """

    def __init__(self, controller: str, action: str, target: str, hint: str) -> None:
        super().__init__(f"controller {controller!r} may not {action} {target}: {hint}")
        self.controller = controller
        self.action = action
        self.target = target


class RequeueError(ControllerError):
    """Raise from a reconcile to fail it and retry after ``interval`` seconds instead of the backoff delay.

    For an expected, transient condition with a known retry time (a device not there yet, a KMS that said
    "retry in 5 s"). It is counted as an error and logged, but it does not lengthen the backoff streak.

    Args:
        cause: what went wrong (an exception or a message).
        interval: seconds before the retry (> 0).
    """

    def __init__(self, cause: BaseException | str, interval: float) -> None:
        if not (math.isfinite(interval) and interval > 0):
            raise ValueError(f"RequeueError interval must be a positive number of seconds, got {interval!r}")
        super().__init__(f"requeue after {interval:g}s: {cause}")
        self.cause = cause
        self.interval = interval


_EXITS: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit, GeneratorExit)


def passes_through(exc: BaseException) -> bool:
    """Whether ``exc`` from a reconcile or a mapping must end the runtime rather than fail the controller.

    Only cancellation (anyio's cancelled exception class, which is asyncio.CancelledError or trio.Cancelled)
    and the exits (KeyboardInterrupt, SystemExit, GeneratorExit) pass through, also inside an exception
    group. Any other BaseException is a controller failure: pyo3's PanicException, for one, derives from
    BaseException, and a library that panics on hostile input must not take the whole subsystem down.
    Call it from async code (the cancelled class depends on the running event loop).
    """
    fatal = (anyio.get_cancelled_exc_class(), *_EXITS)
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(lambda e: isinstance(e, fatal)) is not None
    return isinstance(exc, fatal)


def failure_text(exc: BaseException) -> str:
    """``Type: message`` of a failed reconcile for the log's ``error`` field, never ``repr(exc)``.

    An exception's repr shows its arguments as reprs, and some carry the data they failed on: a
    UnicodeEncodeError's holds the whole string it could not encode (a passphrase). Its message names only
    the offending character and position.
    """
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__

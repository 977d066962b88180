"""Blocking TPM calls in daemon threads: a call abandoned behind a hung TPM never holds up process exit.

``anyio.to_thread.run_sync(..., abandon_on_cancel=True)`` lets the caller go, but its worker is not a daemon
thread: the interpreter joins it at exit, forever when the TPM never answers. A daemon thread per call is not
joined; the awaiting task is woken through the event loop token when the call ends.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from typing import TYPE_CHECKING, Any, TypeVar, final

import anyio
import anyio.from_thread
import anyio.lowlevel

if TYPE_CHECKING:
    from collections.abc import Callable

_T = TypeVar("_T")


@final
class _Outcome:
    """The result or the exception of one call, and the event that says it is there."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def unwrap(self) -> Any:
        if self.error is not None:
            error, self.error = self.error, None  # no reference cycle through the traceback
            raise error
        return self.value


async def run_in_daemon_thread(func: Callable[..., _T], *args: Any, name: str = "volumed-tpm") -> _T:
    """``func(*args)`` in a new daemon thread; cancelling the caller abandons the call (it ends on its own).

    The call runs in a copy of the caller's context (as anyio's workers do), so log bindings carry over.
    """
    outcome = _Outcome()
    token = anyio.lowlevel.current_token()
    context = contextvars.copy_context()

    def call() -> None:
        try:
            outcome.value = context.run(func, *args)
        except BaseException as exc:  # handed to the awaiting task, which re-raises it
            outcome.error = exc
        finally:
            _wake(outcome.done, token)

    threading.Thread(target=call, name=name, daemon=True).start()
    await outcome.done.wait()
    return outcome.unwrap()  # type: ignore[no-any-return]


def _wake(done: anyio.Event, token: anyio.lowlevel.EventLoopToken) -> None:
    """Set ``done`` in its event loop; nothing to do when that loop has ended (nobody awaits any more)."""
    with contextlib.suppress(RuntimeError):  # anyio.RunFinishedError, or asyncio's closed loop
        anyio.from_thread.run_sync(done.set, token=token)

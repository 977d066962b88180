"""The two controller shapes: a whole-controller level-triggered reconcile, and a per-resource queue one."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Sequence

    from volumed.runtime.resource import Pointer, Resource

    from ._context import ControllerContext
    from ._io import Input, Output
    from ._reader import ControllerReader
    from ._source import EventSource


class Controller(abc.ABC):
    """A level-triggered controller: one `reconcile` that converges *all* of its outputs.

    Set ``name``, ``inputs`` and ``outputs`` as class attributes (or in ``__init__`` for parametrised
    controllers). The runtime calls `reconcile` once at start and again after input changes.

    Concurrency contract:

    - Reconciles of one controller never overlap. Changes that arrive while one runs are coalesced: any number
      of them cause exactly one more reconcile, which is not told what changed. Read the current state.
    - Call ``ctx.requeue_after(seconds)`` to be reconciled again after a delay even without input changes.
    - Declare ``sources`` (`EventSource` values) to be woken by something outside the state (inotify,
      uevents, a timer): their ``wake()`` is coalesced with input changes.
    - After a reconcile returns, every output owned by this controller that it did not write this time is torn
      down and destroyed once no finalizers remain (touched-output cleanup; set ``cleanup_outputs = False`` to
      manage outputs by hand). That is how derived resources disappear when their inputs go away.
    - A reconcile that raises is retried after an exponential backoff (see `BackoffPolicy`); no cleanup runs
      for it. The next successful reconcile resets the backoff. Cancellation (runtime stop) is never retried.
    """

    name: str
    inputs: Sequence[Input] = ()
    outputs: Sequence[Output] = ()
    sources: Sequence[EventSource] = ()
    cleanup_outputs: ClassVar[bool] = True

    @abc.abstractmethod
    async def reconcile(self, ctx: ControllerContext) -> None:
        """Converge the outputs to what the inputs say now."""


class QController(abc.ABC):
    """A per-resource controller (COSI's QController): `reconcile` handles one key (a pointer) at a time.

    Contract:

    - Keys come from input changes: a change of a resource of an input type is turned into keys by
      `map_input` (by default the resource's own pointer, i.e. every input is primary). Override it to map a
      secondary input (e.g. a config) onto the primary resources it affects.
    - The queue is deduplicated and a key is never reconciled twice at the same time; up to ``concurrency``
      different keys are reconciled in parallel.
    - At start every existing resource of every input is mapped once, so nothing present before the start is
      missed.
    - A key whose reconcile raises is retried with its own backoff (other keys are not delayed); a success
      clears it; a new change of the key retries it at once. ``ctx.requeue_after(seconds)`` reconciles the key
      again later. There is no touched-output cleanup: destroy what you derived from a key when that key's
      resource goes away or tears down (declare your output type as a ``DESTROY_READY`` input, mapped to your
      keys, to be woken when finalizers on it are all gone).
    - The key's resource may be gone by the time the reconcile runs: use ``ctx.find``.
    - Declared ``sources`` (`EventSource` values) put keys into the queue from outside the state:
      ``wake(pointer, ...)``.
    """

    name: str
    inputs: Sequence[Input] = ()
    outputs: Sequence[Output] = ()
    sources: Sequence[EventSource] = ()
    concurrency: int = 1

    @abc.abstractmethod
    async def reconcile(self, ctx: ControllerContext, pointer: Pointer) -> None:
        """Converge what is derived from the resource at ``pointer``."""

    async def map_input(self, reader: ControllerReader, resource: Resource[Any]) -> Sequence[Pointer]:
        """The keys to reconcile when ``resource`` (of any input type) changed or was destroyed.

        Called, in a task of its own, with the value before each change and the value after it (a resource
        that moves from one key to another wakes both), or the last value of a destroyed resource. Every
        value a resource takes while it runs is mapped afterwards, in order. Keep it quick (reads only): it
        delays the mapping of later changes. Errors (including a result that is not a sequence of hashable
        keys) are logged and counted, and that value is dropped for this controller.
        """
        return (resource.pointer,)

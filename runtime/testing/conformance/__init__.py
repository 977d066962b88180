"""Conformance suites for your own state backend and for the runtime over it (pytest, pytest-asyncio).

Install ``volumed[testing]``. In a test module, subclass a suite with a name pytest collects and say how to
open your backend; every test of the suite then runs against it::

    class TestMyBackendState(StateConformance):
        def open_backend(self, setup: BackendSetup) -> AbstractAsyncContextManager[CoreState]:
            return my_backend(setup.directory, setup.registry, history=setup.history)

`RuntimeConformance` takes the same ``open_backend``. Set ``persistent = True`` on the class when the backend
keeps its resources across a close and a reopen in the same directory. The suites mark their coroutine
tests for pytest-asyncio themselves, so they run whatever ``asyncio_mode`` your project uses.
"""

from ._backend import HISTORY as HISTORY
from ._backend import BackendSetup as BackendSetup
from ._backend import BackendSuite as BackendSuite
from ._runtime import RuntimeConformance as RuntimeConformance
from ._specs import NS as NS
from ._specs import SUITE_REGISTRY as SUITE_REGISTRY
from ._state import StateConformance as StateConformance

__all__ = [
    "HISTORY",
    "NS",
    "SUITE_REGISTRY",
    "BackendSetup",
    "BackendSuite",
    "RuntimeConformance",
    "StateConformance",
]

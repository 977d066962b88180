"""Test helpers for controllers built on volumed.runtime: a runtime harness and watch-driven assertions.

Import these from your own tests (and ``volumed.runtime.testing.plugin`` for the pytest fixtures, and
``volumed.runtime.testing.conformance`` for the state and runtime suites; both need ``volumed[testing]``).
"""

from ._assertions import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._assertions import assert_no_resource as assert_no_resource
from ._assertions import assert_resource as assert_resource
from ._harness import FAST_BACKOFF as FAST_BACKOFF
from ._harness import run_runtime as run_runtime

__all__ = ["DEFAULT_TIMEOUT", "FAST_BACKOFF", "assert_no_resource", "assert_resource", "run_runtime"]

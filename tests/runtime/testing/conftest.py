# The fixtures as an image builder gets them: `pytest_plugins = ["volumed.runtime.testing.plugin"]` in a
# top-level conftest; a nested conftest may not declare pytest_plugins, so they are imported here instead.
from volumed.runtime.testing.plugin import volumed_runtime as volumed_runtime
from volumed.runtime.testing.plugin import volumed_state as volumed_state

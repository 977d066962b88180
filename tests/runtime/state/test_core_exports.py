"""Public surface of the runtime core: every name exported once, with __all__, value classes final."""

from __future__ import annotations

import importlib
import typing

import pytest

import volumed.runtime
from volumed.runtime import resource, state

CORE_PACKAGES = [
    "volumed.runtime.resource",
    "volumed.runtime.state",
    "volumed.runtime.state.inmem",
    "volumed.runtime.state.sqlite",
]


@pytest.mark.parametrize("name", CORE_PACKAGES)
def test_packages_declare_all_and_export_each_name_once(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), f"{name} exports a name twice"
    for public in exported:
        assert hasattr(module, public), f"{name}.__all__ lists missing {public}"


def test_runtime_reexports_the_core_surface() -> None:
    top = set(volumed.runtime.__all__)
    assert len(volumed.runtime.__all__) == len(top)
    missing = {n for n in (*resource.__all__, *state.__all__) if n not in top} - {
        "SpecT",
        "LabelOp",
        "UpdateFn",
    }
    missing -= {"DEFAULT_HISTORY"}
    assert not missing, f"not re-exported from volumed.runtime: {sorted(missing)}"
    for name in top & (set(resource.__all__) | set(state.__all__)):
        source = resource if name in resource.__all__ else state
        assert getattr(volumed.runtime, name) is getattr(source, name)


@pytest.mark.parametrize(
    "cls",
    [
        resource.Metadata,
        resource.Pointer,
        resource.Kind,
        resource.Resource,
        resource.FrozenMap,
        resource.ResourceDefinition,
        resource.ResourceRegistry,
        resource.LabelQuery,
        resource.LabelTerm,
        resource.IDQuery,
        state.Event,
        state.WrappedState,
        state.InMemoryCore,
        state.SqliteCore,
        state.NamespacedRouter,
        state.SensitiveGuard,
    ],
)
def test_value_and_backend_classes_are_final(cls: type) -> None:
    assert getattr(cls, "__final__", False) is True, f"{cls.__name__} should be @final"
    assert typing.get_origin(cls) is None

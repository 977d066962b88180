"""The public surface: names exported once with __all__, code in private modules, finals final."""

from __future__ import annotations

import importlib

import pytest

import volumed.runtime
from volumed.runtime import controller, testing

FINAL = [
    controller.Runtime,
    controller.ControllerContext,
    controller.KeyedQueue,
    controller.WakeSignal,
    controller.Backoff,
    controller.BackoffPolicy,
    controller.Input,
    controller.Output,
    controller.DependencyGraph,
    controller.ControllerNode,
    controller.ControllerMetrics,
    controller.ControllerStats,
    controller.EventSource,
]


@pytest.mark.parametrize("package", [controller, testing])
def test_all_is_complete_and_without_duplicates(package: object) -> None:
    names = package.__all__  # type: ignore[attr-defined]
    assert len(names) == len(set(names))
    public = {n for n in vars(package) if not n.startswith("_")}
    modules = {n for n in public if isinstance(getattr(package, n), type(importlib))}
    assert public - modules - {"annotations"} == set(names)


@pytest.mark.parametrize("name", controller.__all__)
def test_controller_names_live_in_private_modules(name: str) -> None:
    module = getattr(controller, name).__module__
    assert module.startswith("volumed.runtime.controller._"), module


def test_top_level_reexports_are_the_same_objects() -> None:
    for name in controller.__all__:
        if name in volumed.runtime.__all__:
            assert getattr(volumed.runtime, name) is getattr(controller, name)
    assert volumed.runtime.Runtime is controller.Runtime


@pytest.mark.parametrize("cls", FINAL, ids=lambda c: c.__name__)
def test_value_and_machinery_classes_are_final(cls: type) -> None:
    assert getattr(cls, "__final__", False), f"{cls.__name__} should be @final"

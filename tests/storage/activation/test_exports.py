"""Each public name of the activation and loop packages is exported once, from the package, in __all__."""

from __future__ import annotations

import importlib
import inspect

import pytest


@pytest.mark.parametrize("package", ["volumed.storage.activation", "volumed.storage.loop"])
def test_all_lists_every_public_name_once(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:  # some are imported on first use: every one must resolve
        getattr(module, name)
    public = {name for name in vars(module) if not name.startswith("_") and name != "annotations"}
    submodules = {name for name, value in vars(module).items() if inspect.ismodule(value)}
    assert len(module.__all__) == len(set(module.__all__))
    assert sorted(module.__all__) == list(module.__all__)
    assert set(module.__all__) == public - submodules
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith(package + "._"), name

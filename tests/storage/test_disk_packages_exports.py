"""The disk libraries' public surface: every name in ``__all__`` exists, is exported once, from ``_private``
modules, and the value classes are frozen and final."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any

import pytest

PACKAGES = [
    "volumed.storage.gpt",
    "volumed.storage.probe",
    "volumed.storage.filesystem",
    "volumed.storage.blockdev",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_complete_sorted_and_private_backed(name: str) -> None:
    package = importlib.import_module(name)
    exported = package.__all__
    assert len(exported) == len(set(exported))
    assert sorted(exported) == sorted(
        n for n in vars(package) if not n.startswith("_") and n != "annotations"
    )
    for attr in exported:
        value: Any = getattr(package, attr)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith(f"{name}._"), f"{name}.{attr} is defined in {value.__module__}"


@pytest.mark.parametrize(
    "qualname",
    [
        "volumed.storage.gpt:Partition",
        "volumed.storage.gpt:PartitionTable",
        "volumed.storage.probe:Signature",
        "volumed.storage.blockdev:Region",
        "volumed.storage.blockdev:BlockDeviceInfo",
        "volumed.storage.blockdev:PartitionInfo",
        "volumed.storage.filesystem:MountInfo",
        "volumed.storage.disklayout:WipedPartition",
    ],
)
def test_value_classes_are_frozen_and_final(qualname: str) -> None:
    module, _, attr = qualname.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen
    assert getattr(cls, "__final__", False) is True

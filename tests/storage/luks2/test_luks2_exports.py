"""The public surface: each name exported once, from ``__init__`` and ``lowlevel`` only, with __all__."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["volumed.storage.luks2", "volumed.storage.luks2.lowlevel"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_unique(name: str) -> None:
    module = importlib.import_module(name)
    assert len(module.__all__) == len(set(module.__all__))
    for attr in module.__all__:
        assert hasattr(module, attr), attr


def test_everyday_and_hazmat_do_not_overlap() -> None:
    public = importlib.import_module(MODULES[0])
    lowlevel = importlib.import_module(MODULES[1])
    assert not set(public.__all__) & set(lowlevel.__all__)


def test_lowlevel_carries_a_hazard_banner() -> None:
    lowlevel = importlib.import_module(MODULES[1])
    assert lowlevel.__doc__ is not None
    assert "HAZARDOUS" in lowlevel.__doc__


def test_errors_share_one_base() -> None:
    import volumed.storage.luks2 as luks2

    for name in luks2.__all__:
        obj = getattr(luks2, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, luks2.Luks2Error), name


def test_everyday_classes_are_final_and_values_frozen() -> None:
    import dataclasses

    import volumed.storage.luks2 as luks2

    assert getattr(luks2.Luks2Volume, "__final__", False)
    assert getattr(luks2.VolumeKey, "__final__", False)
    for cls in (luks2.KdfSettings, luks2.FormatOptions, luks2.Token):
        assert dataclasses.fields(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]

"""``volumed.keys.tpm`` exports each public name once, from private modules, and lists it in ``__all__``."""

from __future__ import annotations

import volumed.keys.tpm as tpm


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(tpm) if not name.startswith("_")}
    submodules = {name for name in public if getattr(vars(tpm)[name], "__spec__", None) is not None}
    assert sorted(tpm.__all__) == sorted(public - submodules)
    assert len(tpm.__all__) == len(set(tpm.__all__))


def test_exported_objects_come_from_private_modules() -> None:
    for name in tpm.__all__:
        origin = getattr(getattr(tpm, name), "__module__", None)
        if origin is not None and origin.startswith("volumed.keys.tpm."):
            assert origin.rsplit(".", 1)[1].startswith("_"), f"{name} lives in public module {origin}"

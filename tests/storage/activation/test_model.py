"""Activation inputs: mapping names like Talos', segment validation, backend selection and its reasons."""

from __future__ import annotations

import pytest

from volumed.storage.activation import (
    ActivationError,
    BackendUnavailableError,
    DataSegment,
    FuseActivator,
    _auto,
    check_name,
    mapping_name,
    select_activator,
)


def test_mapping_names_follow_talos() -> None:
    assert mapping_name("STATE") == "luks2-STATE"
    assert mapping_name("u-data.db") == "luks2-u-data.db"


@pytest.mark.parametrize("name", ["", "../x", "a/b", "-leading", "sp ace", "x" * 128])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ActivationError, match="invalid mapping name"):
        check_name(name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offset": 100}, "offset 100 of /dev/x is not a multiple of 512"),
        ({"sector_size": 8192}, "sector size 8192 is not 512"),
        ({"size": 1000}, "size 1000 of /dev/x is not a positive multiple of 512"),
        ({"size": 0}, "size 0 of /dev/x is not a positive multiple"),
        ({"iv_tweak": -1}, "iv_tweak -1 is outside"),
    ],
)
def test_bad_segments_are_refused(kwargs: dict[str, int], message: str) -> None:
    arguments: dict[str, object] = {
        "device": "/dev/x",
        "offset": 0,
        "size": None,
        "sector_size": 512,
    } | kwargs
    with pytest.raises(ActivationError, match=message):
        DataSegment(**arguments)  # type: ignore[arg-type]


def test_auto_falls_back_to_fuse_when_dm_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        _auto, "dm_unavailable_reason", lambda: "/dev/mapper/control is missing (device-mapper)"
    )
    monkeypatch.setattr(_auto, "fuse_unavailable_reason", lambda: None)
    assert select_activator("auto", runtime_dir="/run/x").backend == "fuse"


def test_auto_prefers_dm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_auto, "dm_unavailable_reason", lambda: None)
    monkeypatch.setattr(_auto, "fuse_unavailable_reason", lambda: None)
    assert select_activator("auto").backend == "dm"


def test_no_backend_names_everything_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_auto, "dm_unavailable_reason", lambda: "/dev/mapper/control is missing")
    monkeypatch.setattr(_auto, "fuse_unavailable_reason", lambda: "/dev/fuse is missing")
    with pytest.raises(BackendUnavailableError) as info:
        select_activator("auto")
    assert str(info.value) == (
        "no usable activation backend (auto): dm: /dev/mapper/control is missing; fuse: /dev/fuse is missing"
    )


def test_fuse_activator_paths(tmp_path: object) -> None:
    fuse = FuseActivator(runtime_dir="/run/volumed/fuse")
    assert str(fuse.mountpoint("luks2-STATE")) == "/run/volumed/fuse/luks2-STATE"
    assert str(fuse.decrypted_file("luks2-STATE")) == "/run/volumed/fuse/luks2-STATE/luks2-STATE"
    assert repr(fuse) == "FuseActivator(runtime_dir='/run/volumed/fuse')"
    with pytest.raises(ActivationError, match="invalid mapping name"):
        fuse.mountpoint("../etc")

"""A hostile or broken plugin is refused with a `PluginError` naming it, before anything runs: one that
exits, interrupts, fails while its returned generator is iterated, declares malformed inputs/outputs, or
publishes one of the subsystem's own resource types (an unencrypted EPHEMERAL VolumeConfig)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from volumed.controllers import Plugin, PluginError, SubsystemOptions, build_subsystem
from volumed.controllers._plugins import entry_point_plugins, load_plugin, resolve_plugin
from volumed.resources import BLOCK, DEFINITIONS, VolumeConfigDefinition
from volumed.runtime.controller import Controller, ControllerContext, Input, Output, OutputKind

if TYPE_CHECKING:
    from pathlib import Path

OPTIONS = SubsystemOptions(config=None)


class _Writer(Controller):
    name = "hostile.VCWriter"
    outputs = (Output(VolumeConfigDefinition.type, namespace=BLOCK, kind=OutputKind.SHARED),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        pass


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.type)
def test_a_plugin_may_not_publish_a_built_in_type(definition: Any) -> None:
    outputs = (Output(definition.type, namespace="elsewhere"),)
    writer = type(
        "W", (Controller,), {"name": "hostile.W", "outputs": outputs, "reconcile": _Writer.reconcile}
    )()
    with pytest.raises(PluginError) as caught:
        build_subsystem(OPTIONS, plugins=[Plugin("hostile", (writer,))])
    assert str(caught.value) == (
        f"plugin 'hostile': controller 'hostile.W' publishes {definition.type}, a type of volumed itself: a "
        "plugin reads the built-in types and publishes only its own"
    )


def test_a_shared_volume_config_writer_is_refused() -> None:
    with pytest.raises(
        PluginError, match=r"'hostile\.VCWriter' publishes VolumeConfigs\.block\.volumed\.dev"
    ):
        build_subsystem(OPTIONS, plugins=[Plugin("hostile", (_Writer(),))])


def _exits(options: object) -> None:
    sys.exit(0)


def _interrupts(options: object) -> None:
    raise KeyboardInterrupt


def _generator(options: object) -> Any:
    yield _Writer()
    raise RuntimeError("generator failed after its first controller")


class _Iterable:
    def __iter__(self) -> Any:
        raise SystemExit(3)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (_exits, "plugin 'p': calling it failed: SystemExit: 0"),
        (_interrupts, "plugin 'p': calling it failed: KeyboardInterrupt"),
        (_generator, "plugin 'p': iterating what it returned failed: RuntimeError: generator failed after "
         "its first controller"),
        (lambda options: _Iterable(), "plugin 'p': iterating what it returned failed: SystemExit: 3"),
    ],
)  # fmt: skip
def test_a_plugin_callable_that_exits_or_fails_late_is_a_plugin_error(target: Any, message: str) -> None:
    with pytest.raises(PluginError) as caught:
        resolve_plugin("p", target, OPTIONS)
    assert str(caught.value) == message


class _BadOutputs(Controller):
    name = "hostile.BadOutputs"
    outputs = 5  # type: ignore[assignment]

    async def reconcile(self, ctx: ControllerContext) -> None:
        pass


class _BadInputs(Controller):
    name = "hostile.BadInputs"
    inputs = ("Volumes",)  # type: ignore[assignment]

    async def reconcile(self, ctx: ControllerContext) -> None:
        pass


@pytest.mark.parametrize(
    ("controller", "message"),
    [
        (_BadOutputs(), "plugin 'p': controller 'hostile.BadOutputs': outputs must be a tuple or list of "
         "Output values, got 5"),
        (_BadInputs(), "plugin 'p': controller 'hostile.BadInputs': inputs must be a tuple or list of "
         "Input values, got ('Volumes',)"),
    ],
)  # fmt: skip
def test_malformed_declarations_are_a_plugin_error(controller: Controller, message: str) -> None:
    with pytest.raises(PluginError) as caught:
        build_subsystem(OPTIONS, plugins=[Plugin("p", (controller,))])
    assert str(caught.value) == message


def test_an_import_that_exits_is_a_plugin_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "exiting_plugin.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as caught:
        load_plugin("exiting_plugin:plugin", OPTIONS)
    assert (
        str(caught.value) == "plugin 'exiting_plugin:plugin': importing exiting_plugin failed: SystemExit: 0"
    )


def test_unreadable_entry_point_metadata_is_a_plugin_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    def broken(**kwargs: object) -> object:
        raise ValueError("bad entry_points.txt")

    monkeypatch.setattr(importlib.metadata, "entry_points", broken)
    with pytest.raises(PluginError) as caught:
        entry_point_plugins(OPTIONS)
    assert str(caught.value) == (
        "plugins of the entry-point group 'volumed.controllers': listing them failed: ValueError: bad "
        "entry_points.txt"
    )


def test_inputs_are_not_checked_against_built_in_types() -> None:
    class Reader(Controller):
        name = "ok.Reader"
        inputs = (Input(BLOCK, VolumeConfigDefinition.type),)

        async def reconcile(self, ctx: ControllerContext) -> None:
            pass

    build_subsystem(OPTIONS, plugins=[Plugin("ok", (Reader(),))])


class _RaisingName(Controller):
    @property
    def name(self) -> str:  # type: ignore[override]
        raise SystemExit(1)

    async def reconcile(self, ctx: ControllerContext) -> None:
        pass


def test_a_controller_whose_declarations_raise_is_a_plugin_error() -> None:
    with pytest.raises(PluginError) as caught:
        build_subsystem(OPTIONS, plugins=[Plugin("p", (_RaisingName(),))])
    assert str(caught.value) == (
        "plugin 'p': reading the declarations of its _RaisingName failed: SystemExit: 1"
    )

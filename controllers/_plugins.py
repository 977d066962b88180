"""Plugins: an image builder's controllers (and the resource types they publish) in the running subsystem.

A plugin is named ``module:attribute`` (``volumed run --controller``) or registered by its package in the
entry-point group ``volumed.controllers``. The attribute is a `Plugin`, a Controller or QController class
(made with no arguments), a controller, or a callable taking the `SubsystemOptions` and returning any of these
or an iterable of controllers and `ResourceDefinition` objects. Every failure is a `PluginError` naming the
plugin, raised before the subsystem starts, so a broken plugin never stops a boot halfway: that includes a
plugin that raises SystemExit or KeyboardInterrupt (``volumed run --once`` would exit 0 with nothing mounted).

A plugin publishes only types of its own: the subsystem's (`volumed.resources.DEFINITIONS`) are the built-in
controllers' alone, so a plugin cannot replace an encrypted EPHEMERAL's VolumeConfig with an unencrypted one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from volumed.runtime import ResourceDefinition
from volumed.runtime.controller import Controller, Input, Output, QController

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._subsystem import SubsystemOptions

ENTRY_POINT_GROUP: Final = "volumed.controllers"

_T = TypeVar("_T")

_FAILURES: Final = (Exception, SystemExit, KeyboardInterrupt)
"""What a plugin's code may raise that is its failure: SystemExit and KeyboardInterrupt too, which would
otherwise end `volumed run` (with exit 0 for ``sys.exit(0)``) before anything was mounted."""


class PluginError(Exception):
    """A plugin could not be loaded or registered; the message names it and says why."""


@dataclass(frozen=True)
class Plugin:
    """What one plugin adds: controllers, and the definitions of the resource types they publish (so
    ``volumed get`` serves them, sensitive ones refused like built-in ones)."""

    name: str
    controllers: tuple[Controller | QController, ...] = ()
    definitions: tuple[ResourceDefinition[Any], ...] = ()


def load_plugin(spec: str, options: SubsystemOptions) -> Plugin:
    """The plugin at ``module:attribute``.

    Raises:
        PluginError: a malformed spec, a module that fails to import, a missing attribute, a callable that
            raises, or something that is not a plugin.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise PluginError(f"plugin {spec!r}: expected MODULE:ATTRIBUTE (e.g. 'mycompany.volumes:plugin')")
    module = _guarded(spec, f"importing {module_name}", lambda: importlib.import_module(module_name))
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PluginError(f"plugin {spec!r}: {module_name} has no attribute {attribute!r}") from None
        except _FAILURES as error:  # a module __getattr__ or a descriptor of the plugin's
            raise PluginError(f"plugin {spec!r}: reading {attribute} failed: {_describe(error)}") from error
    return resolve_plugin(spec, target, options)


def entry_point_plugins(options: SubsystemOptions) -> list[Plugin]:
    """Every plugin registered in the ``volumed.controllers`` entry-point group, by entry-point name order.

    Raises:
        PluginError: one of them fails to load (named by its entry point and distribution).
    """
    from importlib import metadata

    def listed() -> list[tuple[str, Any]]:
        points = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name)
        named = []
        for point in points:
            dist = point.dist.name if point.dist is not None else "unknown distribution"
            named.append((f"{point.name} ({point.value}, entry point of {dist})", point))
        return named

    group = f"entry-point group {ENTRY_POINT_GROUP!r}"
    try:
        points = listed()
    except _FAILURES as error:  # unreadable distribution metadata on the path
        raise PluginError(f"plugins of the {group}: listing them failed: {_describe(error)}") from error
    plugins = []
    for name, point in points:
        target = _guarded(name, "loading", point.load)
        plugins.append(resolve_plugin(name, target, options))
    return plugins


def resolve_plugin(name: str, target: object, options: SubsystemOptions) -> Plugin:
    """``target`` (see the module docstring) as a `Plugin` called ``name``.

    Raises:
        PluginError: the callable raised, or nothing usable came out of it.
    """
    if isinstance(target, Plugin):
        return target
    if isinstance(target, type) and issubclass(target, (Controller, QController)):
        made_class: Callable[[], Controller | QController] = target
        return Plugin(name, (_guarded(name, f"{target.__name__}()", made_class),))
    if isinstance(target, (Controller, QController)):
        return Plugin(name, (target,))
    if not callable(target):
        raise PluginError(f"plugin {name!r}: {type(target).__name__} is neither a controller nor a callable")
    call: Callable[[SubsystemOptions], object] = target
    made = _guarded(name, "calling it", lambda: call(options))
    if isinstance(made, Plugin):
        return made
    items: Iterable[object] = (
        (made,) if isinstance(made, (Controller, QController)) else _iterable(name, made)
    )
    controllers: list[Controller | QController] = []
    definitions: list[ResourceDefinition[Any]] = []
    for item in items:
        if isinstance(item, (Controller, QController)):
            controllers.append(item)
        elif isinstance(item, ResourceDefinition):
            definitions.append(item)
        else:
            raise PluginError(
                f"plugin {name!r}: returned a {type(item).__name__}, not a controller or a ResourceDefinition"
            )
    return Plugin(name, tuple(controllers), tuple(definitions))


def _iterable(name: str, made: object) -> Iterable[object]:
    if isinstance(made, Iterable) and not isinstance(made, (str, bytes)):
        iterable: Iterable[object] = made
        return _guarded(name, "iterating what it returned", lambda: list(iterable))
    raise PluginError(
        f"plugin {name!r}: returned a {type(made).__name__}; expected controllers and resource definitions"
    )


def check_outputs_described(plugin: Plugin, described: Sequence[str]) -> None:
    """A plugin's controllers declare their inputs and outputs as tuples of `Input` and `Output`, publish no
    type of the subsystem's own, and every type they publish has a definition (the plugin's own).

    Raises:
        PluginError: naming the controller and the type (or the malformed declaration).
    """
    from volumed.resources import DEFINITIONS

    known = set(described)
    built_in = {definition.type for definition in DEFINITIONS}
    for controller in plugin.controllers:
        _check_declarations(plugin, controller)
        for output in controller.outputs:
            if output.type in built_in:
                raise PluginError(
                    f"plugin {plugin.name!r}: controller {controller.name!r} publishes {output.type}, a type "
                    "of volumed itself: a plugin reads the built-in types and publishes only its own"
                )
            if output.type not in known:
                raise PluginError(
                    f"plugin {plugin.name!r}: controller {controller.name!r} publishes {output.type}, which "
                    "no resource definition describes: add its ResourceDefinition to the plugin"
                )


def _check_declarations(plugin: Plugin, controller: object) -> None:
    """Malformed ``inputs``/``outputs`` (``outputs = 5``) are the plugin's error, not a TypeError later."""
    if not isinstance(controller, (Controller, QController)):
        raise PluginError(
            f"plugin {plugin.name!r}: {type(controller).__name__} is not a Controller or QController"
        )
    what = f"reading the declarations of its {type(controller).__name__}"
    name, inputs, outputs = _guarded(
        plugin.name, what, lambda: (controller.name, controller.inputs, controller.outputs)
    )
    for attribute, kind, declared in (("inputs", Input, inputs), ("outputs", Output, outputs)):
        if not isinstance(declared, (tuple, list)) or not all(isinstance(item, kind) for item in declared):
            raise PluginError(
                f"plugin {plugin.name!r}: controller {name!r}: {attribute} must be a tuple or "
                f"list of {kind.__name__} values, got {declared!r}"
            )


def _guarded(name: str, what: str, call: Callable[[], _T]) -> _T:
    """``call()``, whose failure (SystemExit and KeyboardInterrupt included) is the plugin's `PluginError`."""
    try:
        return call()
    except PluginError:
        raise
    except _FAILURES as error:
        raise PluginError(f"plugin {name!r}: {what} failed: {_describe(error)}") from error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__

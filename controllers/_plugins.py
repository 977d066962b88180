"""Plugins: an image builder's controllers (and the resource types they publish) in the running subsystem.

A plugin is named ``module:attribute`` (``volumed run --controller``) or registered by its package in the
entry-point group ``volumed.controllers``. The attribute is a `Plugin`, a Controller or QController class
(made with no arguments), a controller, or a callable taking the `SubsystemOptions` and returning any of these
or an iterable of controllers and `ResourceDefinition` objects. Every failure is a `PluginError` naming the
plugin, raised before the subsystem starts, so a broken plugin never stops a boot halfway.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from volumed.runtime import ResourceDefinition
from volumed.runtime.controller import Controller, QController

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._subsystem import SubsystemOptions

ENTRY_POINT_GROUP: Final = "volumed.controllers"


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
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise PluginError(f"plugin {spec!r}: importing {module_name} failed: {_describe(error)}") from error
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PluginError(f"plugin {spec!r}: {module_name} has no attribute {attribute!r}") from None
    return resolve_plugin(spec, target, options)


def entry_point_plugins(options: SubsystemOptions) -> list[Plugin]:
    """Every plugin registered in the ``volumed.controllers`` entry-point group, by entry-point name order.

    Raises:
        PluginError: one of them fails to load (named by its entry point and distribution).
    """
    from importlib.metadata import entry_points

    plugins = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        dist = point.dist.name if point.dist is not None else "unknown distribution"
        name = f"{point.name} ({point.value}, entry point of {dist})"
        try:
            target = point.load()
        except Exception as error:
            raise PluginError(f"plugin {name!r}: loading failed: {_describe(error)}") from error
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
        try:
            return Plugin(name, (target(),))
        except Exception as error:
            raise PluginError(f"plugin {name!r}: {target.__name__}() failed: {_describe(error)}") from error
    if isinstance(target, (Controller, QController)):
        return Plugin(name, (target,))
    if not callable(target):
        raise PluginError(f"plugin {name!r}: {type(target).__name__} is neither a controller nor a callable")
    try:
        made = target(options)
    except Exception as error:
        raise PluginError(f"plugin {name!r}: calling it failed: {_describe(error)}") from error
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
        return list(made)
    raise PluginError(
        f"plugin {name!r}: returned a {type(made).__name__}; expected controllers and resource definitions"
    )


def check_outputs_described(plugin: Plugin, described: Sequence[str]) -> None:
    """Every type a plugin's controllers publish must have a definition (built-in or the plugin's own).

    Raises:
        PluginError: naming the controller and the type.
    """
    known = set(described)
    for controller in plugin.controllers:
        for output in controller.outputs:
            if output.type not in known:
                raise PluginError(
                    f"plugin {plugin.name!r}: controller {controller.name!r} publishes {output.type}, which "
                    "no resource definition describes: add its ResourceDefinition to the plugin"
                )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__

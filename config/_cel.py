"""Disk selectors: CEL expressions over ``disk`` and ``system_disk``, compiled and run by cel-python."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

import celpy
import celpy.celtypes as celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError
from lark import Token, Tree

from ._disk import DISK_FIELDS, DiskDescription
from ._errors import SelectorError

if TYPE_CHECKING:
    from collections.abc import Callable

# Size constants Talos' selectors use as `10u * GiB` (all uint, like disk.size).
SIZE_CONSTANTS: Final[dict[str, int]] = {
    **{unit: 1000**power for power, unit in enumerate(("kB", "MB", "GB", "TB", "PB", "EB"), start=1)},
    "KB": 1000,
    **{unit: 1024**power for power, unit in enumerate(("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"), start=1)},
}

_UINT_FIELDS: Final = frozenset({"size", "io_size", "sector_size"})

# A disk that exercises every field, to find unknown names and non-boolean results at validation time.
_SAMPLE_DISK: Final = DiskDescription(
    dev_path="/dev/sda",
    size=100 * 1024**3,
    io_size=4096,
    sector_size=512,
    model="sample",
    serial="sample",
    modalias="sample",
    wwid="sample",
    uuid="sample",
    bus_path="/pci0000:00/sample",
    sub_system="/sys/class/block",
    transport="sata",
    pretty_size="100 GiB",
    symlinks=("/dev/disk/by-id/sample",),
    secondary_disks=("/dev/sdb",),
)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a Go ``filepath.Match`` pattern: ``*`` and ``?`` never match ``/``, ``[^a-z]`` negates."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise SelectorError(f"glob: syntax error in pattern {pattern!r}")
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            if negate:
                body = body[1:]
            escaped = "".join("\\" + c if c in "\\^[]" else c for c in body)
            out.append(f"(?!/)[{'^' if negate else ''}{escaped}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _cel_glob(pattern: celtypes.Value, value: celtypes.Value) -> celtypes.BoolType:
    if not isinstance(pattern, str) or not isinstance(value, str):
        raise TypeError("glob(pattern, value) takes two strings")
    return celtypes.BoolType(_glob_regex(str(pattern)).match(str(value)) is not None)


_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {"glob": _cel_glob}


def _to_cel(name: str, value: object) -> celtypes.Value:
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.UintType(value) if name in _UINT_FIELDS else celtypes.IntType(value)
    if isinstance(value, tuple):
        return celtypes.ListType([celtypes.StringType(str(item)) for item in value])
    return celtypes.StringType(str(value))


def _activation(disk: DiskDescription, *, system_disk: bool) -> dict[str, celtypes.Value]:
    disk_map = celtypes.MapType(
        {celtypes.StringType(f.name): _to_cel(f.name, getattr(disk, f.name)) for f in fields(disk)}
    )
    constants = {name: celtypes.UintType(value) for name, value in SIZE_CONSTANTS.items()}
    return {"disk": disk_map, "system_disk": celtypes.BoolType(system_disk), **constants}


@lru_cache(maxsize=1)
def _environment() -> celpy.Environment:
    return celpy.Environment()


def _clean_eval_message(error: Exception) -> str:
    """celpy's messages can embed the whole activation; keep the first clause only."""
    text = str(error.args[0]) if error.args else str(error)
    return text.split(" (in activation", 1)[0]


def _unknown_disk_fields(tree: Tree[Token]) -> list[str]:
    unknown: list[str] = []
    stack: list[Tree[Token]] = [tree]
    nodes: list[Tree[Token]] = []
    while stack:
        current = stack.pop()
        nodes.append(current)
        stack.extend(child for child in current.children if isinstance(child, Tree))
    for node in nodes:
        if node.data not in ("member_dot", "member_dot_arg") or len(node.children) < 2:
            continue
        target, name = node.children[0], node.children[1]
        if not isinstance(target, Tree) or not isinstance(name, Token):
            continue
        primary = target.children[0] if target.data == "member" and target.children else None
        ident = primary.children[0] if isinstance(primary, Tree) and primary.children else None
        if (
            isinstance(ident, Tree)
            and ident.data == "ident"
            and ident.children
            and str(ident.children[0]) == "disk"
            and node.data == "member_dot"
            and str(name) not in DISK_FIELDS
        ):
            unknown.append(str(name))
    return unknown


@dataclass(frozen=True, eq=False)
class DiskSelector:
    """A compiled disk selector.

    Build one with :func:`compile_selector` (which reports syntax errors, unknown ``disk`` fields and
    non-boolean results); :meth:`matches` evaluates it for one disk. Instances compare by expression text.

    Attributes:
        expression: the CEL text as written in the document.
    """

    expression: str
    _program: celpy.Runner = field(repr=False, compare=False)

    def matches(self, disk: DiskDescription, *, system_disk: bool = False) -> bool:
        """Whether ``disk`` is selected; ``system_disk`` tells whether it holds the OS (Talos' variable).

        Raises:
            SelectorError: the expression fails on this disk (wrong types, unknown names) or is not boolean.
        """
        try:
            result = self._program.evaluate(_activation(disk, system_disk=system_disk))
        except CELEvalError as error:
            raise SelectorError(f"disk selector {self.expression!r}: {_clean_eval_message(error)}") from None
        except Exception as error:  # cel-python may raise plain Python errors from its evaluator
            raise SelectorError(f"disk selector {self.expression!r}: {error}") from None
        if not isinstance(result, celtypes.BoolType):
            type_name = type(result).__name__.removesuffix("Type").lower()
            raise SelectorError(
                f"disk selector {self.expression!r}: expression output type is {type_name}, expected bool"
            )
        return bool(result)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DiskSelector) and other.expression == self.expression

    def __hash__(self) -> int:
        return hash(self.expression)


def compile_selector(expression: str) -> DiskSelector:
    """Compile a disk selector and check it against a sample disk.

    Raises:
        SelectorError: a syntax error (with line and column), a ``disk.<field>`` that does not exist, an
            undeclared name, or a result that is not a boolean.
    """
    environment = _environment()
    try:
        tree = environment.compile(expression)
    except CELParseError as error:
        line, column = getattr(error, "line", None), getattr(error, "column", None)
        where = f" at line {line}, column {column}" if line is not None else ""
        raise SelectorError(f"syntax error{where}") from None
    except Exception as error:  # the lark-based parser may raise its own errors on odd input
        raise SelectorError(f"syntax error: {type(error).__name__}") from None
    unknown = _unknown_disk_fields(tree)
    if unknown:
        raise SelectorError(f"no such field disk.{unknown[0]}")
    try:
        program = environment.program(tree, functions=_FUNCTIONS)
    except Exception as error:
        raise SelectorError(f"cannot compile: {error}") from None
    selector = DiskSelector(expression, program)
    for system_disk in (False, True):
        try:
            selector.matches(_SAMPLE_DISK, system_disk=system_disk)
        except SelectorError as error:
            message = str(error).removeprefix(f"disk selector {expression!r}: ")
            if "undeclared reference" in message or "no such member" in message or "output type" in message:
                raise SelectorError(message) from None
    return selector

"""Disk selectors: CEL expressions over ``disk`` and ``system_disk``, compiled and run by cel-python.

Bounded, as cel-go bounds Talos' (cel-python has no cost tracker): the text's length, the depth of its syntax
tree and the nesting of macros are checked at compile time, and each evaluation stops after
MAX_SELECTOR_STEPS steps. Errors name lines, columns and the kind of problem, never the expression's text.
cel-python itself lives in ``._cel_engine``, imported when a selector is first compiled.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ._disk import DiskDescription
from ._errors import SelectorError
from ._limits import MAX_CONFIG_SELECTOR_CHARACTERS, MAX_CONFIG_SELECTOR_STEPS, MAX_SELECTOR_LENGTH

if TYPE_CHECKING:
    from collections.abc import Iterator

# Size constants Talos' selectors use as `10u * GiB` (all uint, like disk.size).
SIZE_CONSTANTS: Final[dict[str, int]] = {
    **{unit: 1000**power for power, unit in enumerate(("kB", "MB", "GB", "TB", "PB", "EB"), start=1)},
    "KB": 1000,
    **{unit: 1024**power for power, unit in enumerate(("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"), start=1)},
}

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


@dataclass
class SharedBudget:
    """What all the selectors of one config may cost together: each is bounded, but a config may have 1024.

    Attributes:
        steps: evaluation steps left (MAX_CONFIG_SELECTOR_STEPS to start with).
        characters: selector text left to compile (MAX_CONFIG_SELECTOR_CHARACTERS to start with).
    """

    steps: int = MAX_CONFIG_SELECTOR_STEPS
    characters: int = MAX_CONFIG_SELECTOR_CHARACTERS


_shared_budget: ContextVar[SharedBudget | None] = ContextVar("selector_budget", default=None)


@contextmanager
def shared_selector_budget() -> Iterator[SharedBudget]:
    """Within the block (in this thread or task), selectors compiled and evaluated share one budget."""
    budget = SharedBudget()
    token = _shared_budget.set(budget)
    try:
        yield budget
    finally:
        _shared_budget.reset(token)


def current_shared_budget() -> SharedBudget | None:
    """The budget of the enclosing :func:`shared_selector_budget` block, None outside one."""
    return _shared_budget.get()


@dataclass(frozen=True)
class _PlainProgram:
    """``system_disk`` or ``!system_disk``, run without cel-python (~0.1 s and ~10 MB at start): Talos' STATE
    and EPHEMERAL selectors and the usual user volume's. Each run spends the steps cel-python's evaluation of
    the same text spends (tests/config/test_cel_plain.py compares both), so a config's shared budget runs out
    alike."""

    negate: bool
    steps: int

    def run(self, *, system_disk: bool) -> bool:
        shared = _shared_budget.get()
        if shared is not None:
            shared.steps -= self.steps
            if shared.steps < 0:
                raise SelectorError(
                    f"disk selector: the config's selectors take more than {MAX_CONFIG_SELECTOR_STEPS}"
                    " evaluation steps together (the limit)"
                )
        return system_disk != self.negate


# By exact text: any other spelling (spaces, parentheses, comments) goes through cel-python.
_PLAIN_PROGRAMS: Final = {
    "system_disk": _PlainProgram(negate=False, steps=9),
    "!system_disk": _PlainProgram(negate=True, steps=11),
}


@dataclass(frozen=True, eq=False)
class DiskSelector:
    """A compiled disk selector.

    Build one with :func:`compile_selector` (which reports syntax errors, unknown ``disk`` fields and
    non-boolean results); :meth:`matches` evaluates it for one disk. Instances compare by expression text.

    Attributes:
        expression: the CEL text as written in the document.
    """

    expression: str
    _program: Any = field(repr=False, compare=False)  # a celpy.Runner (celpy is imported when compiling)

    def matches(self, disk: DiskDescription, *, system_disk: bool = False) -> bool:
        """Whether ``disk`` is selected; ``system_disk`` tells whether it holds the OS (Talos' variable).

        Raises:
            SelectorError: the expression fails on this disk (wrong types, unknown names), is not boolean, or
                takes more than MAX_SELECTOR_STEPS steps. The message does not quote the expression.
        """
        if isinstance(self._program, _PlainProgram):
            return self._program.run(system_disk=system_disk)
        from ._cel_engine import evaluate

        return evaluate(self._program, disk, system_disk=system_disk)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DiskSelector) and other.expression == self.expression

    def __hash__(self) -> int:
        return hash(self.expression)


def compile_selector(expression: str) -> DiskSelector:
    """Compile a disk selector and check it against a sample disk.

    Raises:
        SelectorError: a syntax error (with line and column), a ``disk.<field>`` that does not exist, an
            undeclared name, a result that is not a boolean, or past a limit (:mod:`._limits`). The message
            names lines and columns, never the expression's text.
    """
    if len(expression) > MAX_SELECTOR_LENGTH:
        raise SelectorError(f"too long: more than {MAX_SELECTOR_LENGTH} characters (the limit)")
    shared = _shared_budget.get()
    if shared is not None:
        shared.characters -= len(expression)
        if shared.characters < 0:
            raise SelectorError(
                f"the config's selectors have more than {MAX_CONFIG_SELECTOR_CHARACTERS} characters together"
                " (the limit)"
            )
    program: object = _PLAIN_PROGRAMS.get(expression)
    if program is None:
        from ._cel_engine import compile_program

        program = compile_program(expression)
    selector = DiskSelector(expression, program)
    for system_disk in (False, True):
        try:
            selector.matches(_SAMPLE_DISK, system_disk=system_disk)
        except SelectorError as error:
            message = str(error).removeprefix("disk selector: ")
            if message.startswith(("undeclared reference", "no such member", "expression output type")) or (
                "(the limit)" in message
            ):
                raise SelectorError(message) from None
    return selector

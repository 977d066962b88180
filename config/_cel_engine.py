"""The CEL side of disk selectors: cel-python (with lark and pendulum) and RE2, imported by ``._cel`` only
when a selector other than ``system_disk``/``!system_disk`` is compiled, so that other configs (and every
process that only imports ``volumed.config``) do not pay ~0.1 s of CPU for them.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from dataclasses import fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

import celpy
import celpy.celtypes as celtypes
import re2  # type: ignore[import-untyped]
from celpy.celparser import CELParseError
from celpy.evaluation import Activation, CELEvalError, Evaluator
from lark import Token, Tree

from ._cel import SIZE_CONSTANTS, current_shared_budget
from ._disk import DISK_FIELDS
from ._errors import SelectorError
from ._glob import glob_match
from ._limits import (
    MAX_CONFIG_SELECTOR_STEPS,
    MAX_SELECTOR_MACRO_DEPTH,
    MAX_SELECTOR_STEPS,
    MAX_SELECTOR_TREE_DEPTH,
    WORK_PER_STEP,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from ._cel import SharedBudget
    from ._disk import DiskDescription
    from ._volume import VolumeDescription


# cel-python logs at debug level what it compiles and evaluates (syntax trees, string literals, values): a
# selector's text may hold what must not be logged, so its loggers stay at WARNING whatever the root's level.
logging.getLogger("celpy").setLevel(logging.WARNING)


_UINT_FIELDS: Final = frozenset({"size", "io_size", "sector_size"})
# CEL's comprehension macros: each runs its expression once per item of a list.
_MACROS: Final = frozenset({"all", "exists", "exists_one", "map", "filter"})
# cel-python's evaluation messages, by their start, as kinds of problem (the rest quotes the expression).
_EVAL_PROBLEMS: Final = (
    ("undeclared reference", "undeclared reference"),
    ("no such member", "no such member"),
    ("no such overload", "no such overload (operands of the wrong types)"),
    ("divide by zero", "divide by zero"),
    ("return error for overflow", "overflow"),
    ("invalid_argument", "index out of range"),
)


def _cel_glob(pattern: celtypes.Value, value: celtypes.Value) -> celtypes.BoolType:
    if not isinstance(pattern, str) or not isinstance(value, str):
        raise TypeError("glob(pattern, value) takes two strings")
    budget = _evaluation_budget.get()
    spend = budget.spend_work if budget is not None else _spend_nothing
    return celtypes.BoolType(glob_match(str(pattern), str(value), spend))


def _spend_nothing(units: int) -> None:
    """The cost of a function called outside a budgeted evaluation (not counted)."""


def _regex_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # re2 logs a bad pattern with its text to stderr (a passphrase, maybe)
    return options


_REGEX_OPTIONS: Final = _regex_options()


@lru_cache(maxsize=64)
def _compile_regex(pattern: str) -> re2._Regexp:
    """RE2 (linear time), silent about errors. Raises SelectorError for a bad pattern, without its text."""
    try:
        return re2.compile(pattern, _REGEX_OPTIONS)
    except re2.error:
        raise SelectorError("invalid regular expression") from None


def _cel_matches(text: celtypes.Value, pattern: celtypes.Value) -> celtypes.BoolType:
    """CEL's ``matches`` as cel-python has it (RE2 search), without its logging of bad patterns."""
    if not isinstance(text, str) or not isinstance(pattern, str):
        raise TypeError("matches(text, pattern) takes two strings")
    return celtypes.BoolType(_compile_regex(str(pattern)).search(str(text)) is not None)


_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {"glob": _cel_glob, "matches": _cel_matches}


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


class _StepsExceededError(Exception):
    """An evaluation went past a step limit (not a CEL error: cel-python must not absorb it).

    Attributes:
        message: which limit, in the words of the error the selector gets.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Budget:
    def __init__(self, steps: int, shared: SharedBudget | None) -> None:
        self.left = steps
        self.shared = shared
        self._work = 0

    def spend_work(self, units: int) -> None:
        """Spend a step per WORK_PER_STEP units of a function's work (glob's character comparisons)."""
        self._work += units
        while self._work >= WORK_PER_STEP:
            self._work -= WORK_PER_STEP
            self.spend()

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _StepsExceededError(f"evaluation takes more than {MAX_SELECTOR_STEPS} steps (the limit)")
        if self.shared is not None:
            self.shared.steps -= 1
            if self.shared.steps < 0:
                raise _StepsExceededError(
                    f"the config's selectors take more than {MAX_CONFIG_SELECTOR_STEPS} evaluation steps"
                    " together (the limit)"
                )


class _BudgetedEvaluator(Evaluator):
    """cel-python's evaluator, counting every node it visits (macros' sub-evaluators share the count)."""

    def __init__(self, ast: Tree[Token], activation: Activation, budget: _Budget) -> None:
        super().__init__(ast, activation)
        self._budget = budget

    def visit(self, tree: Tree[Token]) -> Any:
        self._budget.spend()
        return super().visit(tree)

    def visit_children(self, tree: Tree[Token]) -> list[Any]:
        self._budget.spend()  # lark visits children without going through visit()
        return super().visit_children(tree)

    def sub_evaluator(self, ast: Tree[Token]) -> Evaluator:
        return _BudgetedEvaluator(ast, self.activation, self._budget)


class _BudgetedRunner(celpy.InterpretedRunner):
    def evaluate(self, context: Any) -> celtypes.Value:
        budget = _Budget(MAX_SELECTOR_STEPS, current_shared_budget())
        evaluator = _BudgetedEvaluator(self.ast, self.new_activation(), budget)
        token = _evaluation_budget.set(budget)  # for the functions (glob), which celpy calls with values only
        try:
            return evaluator.evaluate(context)
        finally:
            _evaluation_budget.reset(token)


_evaluation_budget: ContextVar[_Budget | None] = ContextVar("selector_evaluation_budget", default=None)


@lru_cache(maxsize=1)
def _environment() -> celpy.Environment:
    # celpy raises the process' recursion limit to 2500; MAX_SELECTOR_TREE_DEPTH keeps evaluation within the
    # default, so the limit is put back (it is process-wide state).
    limit = sys.getrecursionlimit()
    try:
        return celpy.Environment(runner_class=_BudgetedRunner)
    finally:
        sys.setrecursionlimit(limit)


def _eval_problem(error: Exception) -> str:
    """The kind of an evaluation error, with its line and column when known (celpy's text names values)."""
    text = str(error.args[0]) if error.args else ""
    problem = next((kind for start, kind in _EVAL_PROBLEMS if text.startswith(start)), "evaluation error")
    line, column = getattr(error, "line", None), getattr(error, "column", None)
    return f"{problem} at line {line}, column {column}" if line is not None else problem


def _nodes(tree: Tree[Token]) -> list[Tree[Token]]:
    nodes: list[Tree[Token]] = []
    stack: list[Tree[Token]] = [tree]
    while stack:
        current = stack.pop()
        nodes.append(current)
        stack.extend(child for child in current.children if isinstance(child, Tree))
    return nodes


def _check_shape(tree: Tree[Token]) -> None:
    """Refuse a syntax tree deeper than MAX_SELECTOR_TREE_DEPTH or macros nested deeper than allowed."""
    stack: list[tuple[Tree[Token], int, int]] = [(tree, 1, 0)]
    while stack:
        node, depth, nesting = stack.pop()
        if depth > MAX_SELECTOR_TREE_DEPTH:
            raise SelectorError(f"nested too deep: more than {MAX_SELECTOR_TREE_DEPTH} levels (the limit)")
        is_macro = (
            node.data == "member_dot_arg"
            and len(node.children) == 3
            and isinstance(node.children[1], Token)
            and str(node.children[1]) in _MACROS
        )
        if is_macro and nesting >= MAX_SELECTOR_MACRO_DEPTH:
            name = node.children[1]
            where = f" at line {name.line}, column {name.column}" if isinstance(name, Token) else ""
            raise SelectorError(
                f"macros nested more than {MAX_SELECTOR_MACRO_DEPTH} levels deep{where} (the limit for all,"
                " exists, exists_one, map and filter inside one another's expression)"
            )
        for position, child in enumerate(node.children):
            if isinstance(child, Tree):
                inner = nesting + 1 if is_macro and position == 2 else nesting
                stack.append((child, depth + 1, inner))


def _unknown_fields(tree: Tree[Token], known: Mapping[str, frozenset[str]]) -> list[tuple[str, Token]]:
    """``<variable>.<field>`` names that ``known`` (variable -> its fields) does not list."""
    unknown: list[tuple[str, Token]] = []
    for node in _nodes(tree):
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
            and str(ident.children[0]) in known
            and node.data == "member_dot"
            and str(name) not in known[str(ident.children[0])]
        ):
            unknown.append((str(ident.children[0]), name))
    return unknown


def _literal_of(tree: Tree[Token]) -> Token | None:
    """The literal token an expression is made of alone (``"x"``), None when it is anything else."""
    node = tree
    while len(node.children) == 1 and isinstance(node.children[0], Tree):
        node = node.children[0]
    if node.data == "literal" and len(node.children) == 1 and isinstance(node.children[0], Token):
        return node.children[0]
    return None


def _regex_arguments(tree: Tree[Token]) -> Iterator[Tree[Token]]:
    """The pattern argument of every ``x.matches(p)`` and ``matches(x, p)`` in the syntax tree."""
    for node in _nodes(tree):
        children = node.children
        if node.data == "member_dot_arg" and len(children) == 3 and str(children[1]) == "matches":
            arguments, position = children[2], 0
        elif node.data == "ident_arg" and len(children) == 2 and str(children[0]) == "matches":
            arguments, position = children[1], 1
        else:
            continue
        if isinstance(arguments, Tree) and len(arguments.children) > position:
            argument = arguments.children[position]
            if isinstance(argument, Tree):
                yield argument


def _check_constant_regexes(environment: celpy.Environment, tree: Tree[Token]) -> None:
    """Refuse a ``matches`` whose pattern is a string literal RE2 does not accept (as cel-go does)."""
    for argument in _regex_arguments(tree):
        token = _literal_of(argument)
        if token is None:
            continue  # computed: checked when evaluated
        try:
            value = environment.program(Tree("expr", [argument]) if argument.data != "expr" else argument)
            pattern = value.evaluate({})
        except Exception:  # not a literal cel-python can evaluate alone: left to the evaluation
            continue
        if isinstance(pattern, str):
            try:
                _compile_regex(str(pattern))
            except SelectorError:
                raise SelectorError(
                    f"invalid regular expression at line {token.line}, column {token.column}"
                ) from None


def compile_program(
    expression: str,
    *,
    variables: Mapping[str, frozenset[str]] | None = None,
    unsupported: Mapping[str, frozenset[str]] | None = None,
) -> celpy.Runner:
    """The runnable program of ``expression``, checked for its shape, ``disk`` fields (and those of the other
    variables in ``variables``: ``volume`` for volume selectors) and constant regexes. A field listed in
    ``unsupported`` (variable -> fields) exists in Talos but is not known here: it is refused by name.

    Raises:
        SelectorError: as :func:`volumed.config.compile_selector` says (without the expression's text).
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
    _check_shape(tree)
    unknown = _unknown_fields(tree, {"disk": DISK_FIELDS, **(variables or {})})
    if unknown:
        variable, first = unknown[0]
        raise SelectorError(f"no such field of {variable} at line {first.line}, column {first.column}")
    for variable, name in _unknown_fields(
        tree, {v: f - (unsupported or {}).get(v, frozenset()) for v, f in (variables or {}).items()}
    ):
        raise SelectorError(
            f"{variable}.{name} is not supported: volumed does not probe it (it would be 0 or empty for every"
            f" {variable}), at line {name.line}, column {name.column}"
        )
    _check_constant_regexes(environment, tree)
    try:
        return environment.program(tree, functions=_FUNCTIONS)
    except Exception as error:
        raise SelectorError(f"cannot compile: {type(error).__name__}") from None


def evaluate(program: celpy.Runner, disk: DiskDescription, *, system_disk: bool) -> bool:
    """``program`` run for one disk.

    Raises:
        SelectorError: as :meth:`volumed.config.DiskSelector.matches` says.
    """
    return _run(program, _activation(disk, system_disk=system_disk), "disk selector")


def evaluate_volume(program: celpy.Runner, volume: VolumeDescription, disk: DiskDescription | None) -> bool:
    """``program`` run for one discovered volume and its disk (``disk`` undeclared when None, as in Talos).

    Raises:
        SelectorError: as :meth:`volumed.config.VolumeSelector.matches` says.
    """
    from ._volume import VOLUME_UINT_FIELDS

    activation = {name: celtypes.UintType(value) for name, value in SIZE_CONSTANTS.items()}
    values: dict[str, celtypes.Value] = {
        "volume": celtypes.MapType(
            {
                celtypes.StringType(f.name): (
                    celtypes.UintType(getattr(volume, f.name))
                    if f.name in VOLUME_UINT_FIELDS
                    else _to_cel(f.name, getattr(volume, f.name))
                )
                for f in fields(volume)
            }
        ),
        **activation,
    }
    if disk is not None:
        values["disk"] = _activation(disk, system_disk=False)["disk"]
    return _run(program, values, "volume selector")


def _run(program: celpy.Runner, activation: dict[str, celtypes.Value], what: str) -> bool:
    try:
        result = program.evaluate(activation)
    except _StepsExceededError as error:
        raise SelectorError(f"{what}: {error.message}") from None
    except CELEvalError as error:
        raise SelectorError(f"{what}: {_eval_problem(error)}") from None
    except SelectorError as error:  # from a function (glob), already without the expression's text
        raise SelectorError(f"{what}: {error}") from None
    except RecursionError:
        raise SelectorError(f"{what}: nested too deep to evaluate") from None
    except Exception as error:  # cel-python may raise plain Python errors from its evaluator
        raise SelectorError(f"{what}: evaluation error ({type(error).__name__})") from None
    if not isinstance(result, celtypes.BoolType):
        type_name = type(result).__name__.removesuffix("Type").lower()
        raise SelectorError(f"{what}: expression output type is {type_name}, expected bool")
    return bool(result)

"""The YAML loader for machine config: typed scalars keep the text they were written as.

Talos decodes machine config with yaml.v3, which puts a scalar's text as written into a string field,
whatever the scalar would resolve to (``0x1F``, ``12:30``, ``1.10``, ``yes``), and leaves a string field unset
for a null. PyYAML resolves the same scalars to 31, 750, 1.1 and True, which cannot be turned back into the
text. So this loader wraps every non-string scalar in a :class:`SourceScalar` that carries both; the document
models (:class:`~._model.StrictModel`) take the text for string fields and the value for every other field.

No text of the document reaches an error: a passphrase may be anywhere in it (an unquoted ``*S3cr3t`` is read
as an alias). Errors name lines, columns and what kind of problem it is (:func:`describe_yaml_error`).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import yaml

from ._limits import MAX_EXPANDED_NODES, MAX_YAML_DEPTH, MAX_YAML_NODES
from ._source import SourceScalar, resolved_value

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

# The tags PyYAML's SafeLoader resolves plain scalars to, besides str and null.
_TYPED_SCALAR_TAGS: Final = (
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
)
# Tags PyYAML resolves `=` and `<<` to but has no value constructor for; yaml.v3 reads them as text.
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_INT_TAG: Final = "tag:yaml.org,2002:int"
_NULL_TAG: Final = "tag:yaml.org,2002:null"
_TEXT_ONLY_TAGS: Final = ("tag:yaml.org,2002:value", _MERGE_TAG)
# YAML 1.1 reads `12:30` under these tags as a base-60 number; yaml.v3 reads it as text.
_SEXAGESIMAL_TAGS: Final = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
# A quoted fragment of a PyYAML problem ('x' or "x", with backslash escapes): text of the document unless it
# is one of PyYAML's token names.
_QUOTED: Final = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# The names PyYAML gives tokens in "expected X, but found Y": its vocabulary, not the document's.
_TOKEN_NAMES: Final = frozenset(
    {
        "<stream start>", "<stream end>", "<directive>", "<document start>", "<document end>",
        "<block sequence start>", "<block mapping start>", "<block end>", "<block entry>", "<flow entry>",
        "<alias>", "<anchor>", "<tag>", "<scalar>", "[", "]", "{", "}", "-", ",", "?", ":", " ",
    }
)  # fmt: skip
# PyYAML problems whose quoted part is the document's text, said without it and with their usual cause.
_PROBLEM_REWRITES: Final = (
    ("found undefined alias", "found an undefined alias (a value that starts with '*' must be quoted)"),
    ("could not determine a constructor", "unknown tag (a value that starts with '!' must be quoted)"),
    ("found undefined tag handle", "unknown tag handle (a value that starts with '!' must be quoted)"),
    ("found character", "found a character that cannot start a value (such a value must be quoted)"),
    ("found duplicate anchor", "found a duplicate anchor"),
)  # fmt: skip
_HIDDEN: Final = "(text not shown)"


def _hide_quoted(match: re.Match[str]) -> str:
    text = match.group(0)
    return text if text[1:-1] in _TOKEN_NAMES else _HIDDEN


def safe_problem(problem: str) -> str:
    """A PyYAML problem without the document's text (aliases, tags, characters are quoted in PyYAML's)."""
    for prefix, replacement in _PROBLEM_REWRITES:
        if problem.startswith(prefix):
            return replacement
    return _QUOTED.sub(_hide_quoted, problem)


class OwnProblemError(yaml.constructor.ConstructorError):
    """A problem this module words itself, with no text of the document (it is not filtered again)."""


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """``line L, column C: <problem>`` for any PyYAML error, with no text of the document in it."""
    if isinstance(error, yaml.reader.ReaderError):
        return f"byte {error.position + 1}: a character YAML does not accept"
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if not isinstance(problem, str):
        return where + type(error).__name__
    return where + (problem if isinstance(error, OwnProblemError) else safe_problem(problem))


Position = tuple[int, int]


@dataclass(frozen=True)
class KeyPositions:
    """Where each key of each mapping of a document was written: (line, column), both from 1.

    Keyed by the ``id`` of the dicts the loader built, so valid while the document is alive; the key is the
    one a model sees (a typed scalar's resolved value). Errors about a key whose text they must not show (an
    unknown field) point at it with this.
    """

    _by_mapping: dict[int, dict[object, Position]] = field(default_factory=dict)

    def of(self, mapping: object, key: object) -> Position | None:
        """The position of ``key`` in ``mapping``, None when unknown."""
        keys = self._by_mapping.get(id(mapping))
        if keys is None:
            return None
        try:
            found = keys.get(key)
        except TypeError:  # an unhashable key
            return None
        # pydantic names a key that is not a string (1.5) by its text
        return found or next((where for name, where in keys.items() if str(name) == str(key)), None)


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader whose bool, int, float and timestamp scalars are :class:`SourceScalar`.

    A key given twice in one mapping is an error, as in yaml.v3: PyYAML would keep the last value, silently
    changing the config Talos rejects. Nesting deeper than MAX_YAML_DEPTH and more than MAX_YAML_NODES nodes
    in the stream are errors too (PyYAML recursed until RecursionError and parsed a 1 MiB list for a minute).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._checked_mappings: set[yaml.MappingNode] = set()
        self._depth = 0
        self._nodes = 0
        self._merged = 0
        self.positions = KeyPositions()

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        start: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        mark = start.start_mark if isinstance(start.start_mark, yaml.Mark) else None
        if isinstance(start, yaml.ScalarEvent) and not _encodable(start.value):
            # yaml.v3 (like libyaml) refuses an escape for a surrogate ("\\ud800"); PyYAML makes it a lone
            # surrogate, which no UTF-8 consumer can take (a passphrase's `.encode()` failed at run time).
            problem = "found an invalid Unicode character escape code (a surrogate)"
            raise OwnProblemError(None, None, problem, mark)
        self._nodes += 1  # an alias too, once: 150000 `*a` in one merge list took seconds to parse
        if self._nodes > MAX_YAML_NODES:
            problem = f"more than {MAX_YAML_NODES} YAML nodes in the config (the limit)"
            raise OwnProblemError(None, None, problem, mark)
        if isinstance(start, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            self._depth += 1
            if self._depth > MAX_YAML_DEPTH:
                problem = f"nested deeper than {MAX_YAML_DEPTH} levels (the limit)"
                raise OwnProblemError(None, None, problem, mark)
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)

    def construct_yaml_map(self, node: yaml.MappingNode) -> Generator[dict[Any, Any], None, None]:
        data: dict[Any, Any] = {}
        yield data
        data.update(self.construct_mapping(node))
        keys: dict[object, Position] = {}
        for key_node, _ in node.value:  # merged pairs first, as the dict has them
            key = resolved_value(self.construct_object(key_node))
            try:
                keys[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            except TypeError:
                continue
        self.positions._by_mapping[id(data)] = keys

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Every mapping passes here before merge keys (`<<`) rewrite its pairs, so only its own keys are
        # compared and an explicit key may override a merged one (as in yaml.v3).
        if node not in self._checked_mappings:
            self._checked_mappings.add(node)
            _reject_duplicate_keys(node)
        self._flatten_counting(node)

    def _flatten_counting(self, node: yaml.MappingNode) -> None:
        """PyYAML's flatten_mapping, counting every merged pair it goes through against MAX_EXPANDED_NODES.

        A merge copies the merged mapping's pairs: 5000 keys merged 3300 times fit in 77 KB and became 16.5
        million pairs (minutes, gigabytes) before the expanded-node count could see them.
        """
        merge: list[tuple[yaml.Node, yaml.Node]] = []
        merged_keys: set[int] = set()  # as PyYAML: a key merged twice (the same node's text) is kept once
        index = 0
        while index < len(node.value):
            key_node, value_node = node.value[index]
            if key_node.tag == _MERGE_TAG:
                del node.value[index]
                sources: list[yaml.Node]
                if isinstance(value_node, yaml.MappingNode):
                    sources = [value_node]
                elif isinstance(value_node, yaml.SequenceNode):
                    sources = value_node.value
                else:
                    problem = "expected a mapping or a list of mappings for merging"
                    raise OwnProblemError(None, None, problem, value_node.start_mark)
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        problem = "expected a mapping for merging"
                        raise OwnProblemError(None, None, problem, source.start_mark)
                    self.flatten_mapping(source)
                    self._count_merged(len(source.value), node)
                    for pair in source.value:
                        if id(pair[0].value) not in merged_keys:
                            merged_keys.add(id(pair[0].value))
                            merge.append(pair)
            else:
                if key_node.tag == "tag:yaml.org,2002:value":
                    key_node.tag = "tag:yaml.org,2002:str"
                index += 1
        if merge:
            node.value = merge + node.value

    def _count_merged(self, pairs: int, node: yaml.MappingNode) -> None:
        self._merged += pairs
        if self._merged > MAX_EXPANDED_NODES:
            problem = (
                f"more than {MAX_EXPANDED_NODES} pairs brought in by merge keys (<<)"
                " in the config (the limit)"
            )
            raise OwnProblemError(None, None, problem, node.start_mark)


def _encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (it has no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key_identity(node: yaml.Node) -> object:
    """What makes two keys the same: yaml.v3 compares scalar text; PyYAML merges all spellings of null."""
    if node.tag == _NULL_TAG:
        return _NULL_TAG
    return node.value if isinstance(node, yaml.ScalarNode) else node


def _reject_duplicate_keys(node: yaml.MappingNode) -> None:
    """Raise a ConstructorError in yaml.v3's words for the first key given twice in ``node``.

    The key is named only when it is a field name of the documents volumed reads (a key is text of the
    document, which may be a misplaced passphrase); the positions name it in any case.
    """
    first_lines: dict[object, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        identity = _key_identity(key_node)
        if identity in first_lines:
            from ._vocabulary import field_names  # the models import this module

            shown = f'"{key_node.value}" ' if key_node.value in field_names() else ""
            problem = f"mapping key {shown}already defined at line {first_lines[identity]}"
            raise OwnProblemError(None, None, problem, key_node.start_mark)
        first_lines[identity] = key_node.start_mark.line + 1


def _keeping_text(
    construct: Callable[[ConfigLoader, yaml.Node], object], tag: str
) -> Callable[[ConfigLoader, yaml.Node], object]:
    def construct_with_text(loader: ConfigLoader, node: yaml.Node) -> object:
        if isinstance(node, yaml.ScalarNode) and node.tag in _SEXAGESIMAL_TAGS and ":" in str(node.value):
            return str(node.value)  # YAML 1.1's base 60 (`12:30`): yaml.v3 has none, it is text there
        try:
            value = construct(loader, node)  # raises a ConstructorError for a tagged mapping or sequence
        except yaml.constructor.ConstructorError:
            raise
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError):
            huge = _huge_decimal(node) if tag == _INT_TAG else None
            if huge is not None:
                return SourceScalar(huge, str(node.value))
            # An explicit tag on text it does not fit (`!!bool hunter2`): PyYAML's constructors fail with the
            # text in the message, and the text may be a passphrase.
            problem = f"the value cannot be read as {tag.rsplit(':', 1)[-1]}"
            raise OwnProblemError(None, None, problem, node.start_mark) from None
        return SourceScalar(value, str(node.value))

    return construct_with_text


def _huge_decimal(node: yaml.Node) -> int | None:
    """A stand-in for a decimal integer longer than Python converts (sys.get_int_max_str_digits()), else None.

    Converting it would be slow (why Python refuses) and its exact value is of no use: every number field
    takes far less. The stand-in, plus or minus 10 ** limit, is no larger than the number, so each field's
    range check refuses it by name ("too large", "out of range") and a string field still gets the text.
    """
    text = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").replace("_", "")
    limit = sys.get_int_max_str_digits()
    if digits.isascii() and digits.isdigit() and not digits.startswith("0") and len(digits) > limit:
        magnitude: int = 10**limit
        return sign * magnitude
    return None


def _text_only(loader: ConfigLoader, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise OwnProblemError(None, None, "expected a scalar for this tag", node.start_mark)
    return str(node.value)


for _tag in _TYPED_SCALAR_TAGS:
    ConfigLoader.add_constructor(_tag, _keeping_text(yaml.SafeLoader.yaml_constructors[_tag], _tag))
for _tag in _TEXT_ONLY_TAGS:
    ConfigLoader.add_constructor(_tag, _text_only)


ConfigLoader.add_constructor("tag:yaml.org,2002:map", ConfigLoader.construct_yaml_map)


def load_documents(text: str) -> Iterator[tuple[object, KeyPositions]]:
    """The documents of a multi-document YAML stream with their key positions, one at a time.

    A YAML error raises when reached (describe it with :func:`describe_yaml_error`).
    """
    loader = ConfigLoader(text)  # a SafeLoader
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            yield loader.get_data(), loader.positions
            loader.positions = KeyPositions()
    finally:
        loader.dispose()

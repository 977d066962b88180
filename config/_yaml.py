"""The YAML loader for machine config: typed scalars keep the text they were written as.

Talos decodes machine config with yaml.v3, which puts a scalar's text as written into a string field,
whatever the scalar would resolve to (``0x1F``, ``12:30``, ``1.10``, ``yes``), and leaves a string field unset
for a null. PyYAML resolves the same scalars to 31, 750, 1.1 and True, which cannot be turned back into the
text. So this loader wraps every non-string scalar in a :class:`SourceScalar` that carries both; the document
models (:class:`~._model.StrictModel`) take the text for string fields and the value for every other field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import yaml

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# The tags PyYAML's SafeLoader resolves plain scalars to, besides str and null.
_TYPED_SCALAR_TAGS: Final = (
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
)
# Tags PyYAML resolves `=` and `<<` to but has no value constructor for; yaml.v3 reads them as text.
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_NULL_TAG: Final = "tag:yaml.org,2002:null"
_TEXT_ONLY_TAGS: Final = ("tag:yaml.org,2002:value", _MERGE_TAG)
# YAML 1.1 reads `12:30` under these tags as a base-60 number; yaml.v3 reads it as text.
_SEXAGESIMAL_TAGS: Final = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
# A duplicate key is quoted in the error up to this many characters.
_MAX_KEY_SHOWN: Final = 64


@dataclass(frozen=True)
class SourceScalar:
    """A YAML scalar that resolved to something other than a string, with the text it was written as.

    Attributes:
        value: what PyYAML resolved it to (bool, int, float, date or datetime).
        text: the scalar's text in the document (``0x1F`` for 31).
    """

    value: object
    text: str


def source_text(value: object) -> object:
    """The text a string field gets for ``value``: a typed scalar's source text, anything else unchanged."""
    return value.text if isinstance(value, SourceScalar) else value


def resolved_value(value: object) -> object:
    """What a non-string field gets for ``value``: a typed scalar's resolved value, else ``value``."""
    return value.value if isinstance(value, SourceScalar) else value


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader whose bool, int, float and timestamp scalars are :class:`SourceScalar`.

    A key given twice in one mapping is an error, as in yaml.v3: PyYAML would keep the last value, silently
    changing the config Talos rejects.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._checked_mappings: set[yaml.MappingNode] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Every mapping passes here before merge keys (`<<`) rewrite its pairs, so only its own keys are
        # compared and an explicit key may override a merged one (as in yaml.v3).
        if node not in self._checked_mappings:
            self._checked_mappings.add(node)
            _reject_duplicate_keys(node)
        super().flatten_mapping(node)


def _key_identity(node: yaml.Node) -> object:
    """What makes two keys the same: yaml.v3 compares scalar text; PyYAML merges all spellings of null."""
    if node.tag == _NULL_TAG:
        return _NULL_TAG
    return node.value if isinstance(node, yaml.ScalarNode) else node


def _reject_duplicate_keys(node: yaml.MappingNode) -> None:
    """Raise a ConstructorError in yaml.v3's words for the first key given twice in ``node``."""
    first_lines: dict[object, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        identity = _key_identity(key_node)
        if identity in first_lines:
            name = json.dumps(str(key_node.value)[:_MAX_KEY_SHOWN])
            problem = f"mapping key {name} already defined at line {first_lines[identity]}"
            raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
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
            # An explicit tag on text it does not fit (`!!bool hunter2`): PyYAML's constructors fail with the
            # text in the message, and the text may be a passphrase.
            problem = f"the value cannot be read as {tag.rsplit(':', 1)[-1]}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None
        return SourceScalar(value, str(node.value))

    return construct_with_text


def _text_only(loader: ConfigLoader, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(
            None, None, f"expected a scalar for the tag {node.tag!r}", node.start_mark
        )
    return str(node.value)


for _tag in _TYPED_SCALAR_TAGS:
    ConfigLoader.add_constructor(_tag, _keeping_text(yaml.SafeLoader.yaml_constructors[_tag], _tag))
for _tag in _TEXT_ONLY_TAGS:
    ConfigLoader.add_constructor(_tag, _text_only)


def load_documents(text: str) -> Iterator[object]:
    """The documents of a multi-document YAML stream, one at a time (a YAML error raises when reached)."""
    return yaml.load_all(text, Loader=ConfigLoader)  # a SafeLoader

"""The shared base of every document model: strict types, unknown fields rejected, immutable."""

from __future__ import annotations

import enum
import functools
import types
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator
from pydantic.aliases import AliasChoices

from ._source import resolved_value, source_text


class _Wants(enum.Enum):
    """What a field takes from a YAML scalar: its source text, a list of texts, or its resolved value."""

    TEXT = "text"
    TEXT_ITEMS = "text items"
    VALUE = "value"


def _is_text(annotation: Any) -> bool:
    """Whether a field of this type is a string (``str``, ``SecretStr``, string literals, optionally None)."""
    if annotation in (str, SecretStr):
        return True
    origin = get_origin(annotation)
    arguments = get_args(annotation)
    if origin is Literal:
        return all(isinstance(argument, str) for argument in arguments)
    if origin is Annotated:
        return _is_text(arguments[0])
    if origin in (Union, types.UnionType):
        members = [argument for argument in arguments if argument is not type(None)]
        return bool(members) and all(_is_text(member) for member in members)
    return False


def _wants(annotation: Any) -> _Wants:
    if _is_text(annotation):
        return _Wants.TEXT
    if get_origin(annotation) in (Union, types.UnionType):
        members = [argument for argument in get_args(annotation) if argument is not type(None)]
        if len(members) == 1:
            return _wants(members[0])
    if get_origin(annotation) is list and _is_text(get_args(annotation)[0]):
        return _Wants.TEXT_ITEMS
    return _Wants.VALUE


@functools.cache
def _field_wants(model: type[BaseModel]) -> dict[str, _Wants]:
    """What each input key of ``model`` (field names and every alias) takes from YAML scalars."""
    wants: dict[str, _Wants] = {}
    for name, info in model.model_fields.items():
        keys = {name}
        if info.alias:
            keys.add(info.alias)
        if isinstance(info.validation_alias, str):
            keys.add(info.validation_alias)
        elif isinstance(info.validation_alias, AliasChoices):
            keys.update(choice for choice in info.validation_alias.choices if isinstance(choice, str))
        wants.update(dict.fromkeys(keys, _wants(info.annotation)))
    return wants


def _text_items(value: object) -> object:
    if not isinstance(value, list):
        return resolved_value(value)
    # yaml.v3 skips a null item of a string list.
    return [source_text(item) for item in value if item is not None]


def _for_field(data: dict[Any, Any], model: type[BaseModel]) -> dict[Any, Any]:
    """``data`` with every YAML scalar turned into what its field takes; a null string field is unset."""
    wants = _field_wants(model)
    result: dict[Any, Any] = {}
    for raw_key, value in data.items():
        key = resolved_value(raw_key)
        want = wants.get(key) if isinstance(key, str) else None
        if want is _Wants.TEXT:
            if value is not None:  # yaml.v3 leaves a string field unset for a null
                result[key] = source_text(value)
        elif want is _Wants.TEXT_ITEMS:
            result[key] = _text_items(value)
        elif isinstance(value, list):
            result[key] = [resolved_value(item) for item in value]
        else:
            result[key] = resolved_value(value)
    return result


class StrictModel(BaseModel):
    """Talos decodes machine config strictly: an unknown field or a wrong type is an error, never ignored.

    A string field given an unquoted number, boolean or date gets the text as written (yaml.v3 does so), any
    other field the resolved value; see :mod:`._yaml`. Input is read with :meth:`from_input`, which knows
    only Talos' field names; volumed's own code may also build models with the Python names.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        validate_by_alias=True,
        validate_by_name=True,
        defer_build=True,  # built on first use: a config names few of the document kinds imported
    )

    @classmethod
    def from_input(cls, data: object) -> Self:
        """The model of a document's data (config or META): by Talos' field names (aliases) only, so a
        Python name (``key_size``, ``node_id``) is an unknown field, as in Talos' decoder.

        Raises:
            pydantic.ValidationError: a field is unknown, missing or of the wrong type.
        """
        return cls.model_validate(data, by_alias=True, by_name=False)

    @model_validator(mode="before")
    @classmethod
    def _yaml_scalars(cls, data: object) -> object:
        return _for_field(data, cls) if isinstance(data, dict) else resolved_value(data)

"""Typed YAML scalars with the text they were written as (made by the loader in `._yaml`), apart from
PyYAML: the document models (`._model`) read them, and importing the models does not import PyYAML."""

from __future__ import annotations

from dataclasses import dataclass


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

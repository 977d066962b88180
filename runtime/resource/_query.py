"""Queries that select resources of one kind: by labels and by id pattern."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


class LabelOp(StrEnum):
    """How one label term matches."""

    EQUAL = "equal"
    EXISTS = "exists"
    NOT_EXISTS = "notExists"
    IN = "in"


@final
@dataclass(frozen=True, slots=True)
class LabelTerm:
    """One condition on one label key; build it with `equal`, `exists`, `not_exists` or `in_`."""

    key: str
    op: LabelOp
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"label term key must be a non-empty string, got {self.key!r}")
        wanted = 1 if self.op is LabelOp.EQUAL else (None if self.op is LabelOp.IN else 0)
        if wanted is not None and len(self.values) != wanted:
            raise ValueError(f"label term {self.op.value} on {self.key!r} takes {wanted} value(s)")

    @classmethod
    def equal(cls, key: str, value: str) -> LabelTerm:
        """The label is present and equal to ``value``."""
        return cls(key, LabelOp.EQUAL, (value,))

    @classmethod
    def exists(cls, key: str) -> LabelTerm:
        """The label is present, whatever its value."""
        return cls(key, LabelOp.EXISTS)

    @classmethod
    def not_exists(cls, key: str) -> LabelTerm:
        """The label is absent."""
        return cls(key, LabelOp.NOT_EXISTS)

    @classmethod
    def in_(cls, key: str, values: Iterable[str]) -> LabelTerm:
        """The label is present and one of ``values``."""
        return cls(key, LabelOp.IN, tuple(values))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this term."""
        op = self.op
        if op is LabelOp.EQUAL:
            return labels.get(self.key) == self.values[0]
        if op is LabelOp.EXISTS:
            return self.key in labels
        if op is LabelOp.NOT_EXISTS:
            return self.key not in labels
        value = labels.get(self.key)
        return value is not None and value in self.values


@final
@dataclass(frozen=True, slots=True)
class LabelQuery:
    """All of its terms must match (an empty query matches everything)."""

    terms: tuple[LabelTerm, ...] = ()

    @classmethod
    def of(cls, *terms: LabelTerm) -> LabelQuery:
        """A query of ``terms``."""
        return cls(tuple(terms))

    @classmethod
    def equal(cls, **labels: str) -> LabelQuery:
        """A query requiring every ``key=value`` given."""
        return cls(tuple(LabelTerm.equal(k, v) for k, v in labels.items()))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every term."""
        return all(term.matches(labels) for term in self.terms)


@final
@dataclass(frozen=True, slots=True)
class IDQuery:
    """Ids matching a regular expression (searched, like cosi; anchor it with ``^...$`` for a full match)."""

    pattern: str
    _compiled: re.Pattern[str] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"invalid id query pattern {self.pattern!r}: {exc}") from None
        object.__setattr__(self, "_compiled", compiled)

    def matches(self, id: str) -> bool:
        """Whether ``id`` matches the pattern."""
        return self._compiled.search(id) is not None

"""Validation issues of machine config documents, and the error that carries them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in one document: which document, which field, what is wrong.

    Messages never contain the value of a secret field (static passphrases): they describe the problem, not
    the input.

    Attributes:
        document: ``Kind/name`` (e.g. ``VolumeConfig/STATE``), or ``document N`` when the document has no
            usable kind or name; N counts from 1 in the file.
        path: the field path in YAML spelling (``encryption.keys[1].slot``); empty for the whole document.
        message: the problem, in Talos' wording where Talos has one.
    """

    document: str
    path: str
    message: str

    def __str__(self) -> str:
        if self.path:
            return f"{self.document}: {self.path}: {self.message}"
        return f"{self.document}: {self.message}"


class ConfigError(Exception):
    """Base of the errors of :mod:`volumed.config`."""


class ConfigInvalidError(ConfigError):
    """The config text is not a valid set of machine-config documents.

    Carries every issue found (all documents, all fields), not only the first. Not raised for documents of
    kinds volumed does not handle: those are ignored.
    """

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in issues))


class SelectorError(ConfigError):
    """A disk selector (CEL) cannot be compiled or evaluated; the message names the expression's problem."""

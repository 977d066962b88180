"""Go's ``filepath.Match`` (Unix), for the CEL ``glob(pattern, value)`` of Talos' disk selectors.

Written after Go's algorithm rather than translated to a Python regex: a regex backtracks, so
``glob("*a*a*a*a*a*a*a*ab", "a" * 60)`` did not finish in minutes (holding the GIL). Go matches each chunk
(the text between stars) at the leftmost place it fits and never goes back to an earlier star, so the work is
at most ``len(pattern) * len(value)`` character comparisons; ``spend`` hears of it as it goes.

``*`` matches any run of characters but ``/``, ``?`` one character but ``/``, ``[a-z]``/``[^a-z]`` a character
in (or not in) the ranges, ``\\`` escapes. A malformed pattern (an unclosed class, a trailing ``\\``) is an
error, as in Go, whenever the match gets to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import SelectorError

if TYPE_CHECKING:
    from collections.abc import Callable

_SEPARATOR = "/"


class _BadPatternError(Exception):
    """Go's ErrBadPattern."""


def glob_match(pattern: str, name: str, spend: Callable[[int], None]) -> bool:
    """Whether ``name`` matches ``pattern``; ``spend(n)`` is told of ``n`` comparisons before they are made.

    Raises:
        SelectorError: the pattern is malformed (without its text).
    """
    try:
        return _match(pattern, name, spend)
    except _BadPatternError:
        raise SelectorError("glob: syntax error in pattern") from None


def _match(pattern: str, name: str, spend: Callable[[int], None]) -> bool:
    at = 0  # what is left of the name starts here (indices, not slices: slicing a long name is quadratic)
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return name.find(_SEPARATOR, at) < 0  # a trailing * matches the rest unless it has a /
        spend(len(chunk) + 1)
        rest = _match_chunk(chunk, name, at)
        if rest is not None and (rest == len(name) or pattern):
            at = rest
            continue
        matched = False
        if star:
            i = at
            while i < len(name) and name[i] != _SEPARATOR:  # skip i + 1 characters; a star cannot skip /
                spend(len(chunk) + 1)
                rest = _match_chunk(chunk, name, i + 1)
                i += 1
                if rest is not None:
                    if not pattern and rest < len(name):
                        continue  # the last chunk must use up the name
                    at, matched = rest, True
                    break
        if matched:
            continue
        while pattern:  # no match: Go still reports a malformed rest of the pattern
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "", 0)
        return False
    return at == len(name)


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    """(whether stars lead, the chunk up to the next star outside a class, the rest)."""
    star = False
    while pattern.startswith("*"):
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif char == "[":
            in_range = True
        elif char == "]":
            in_range = False
        elif char == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _match_chunk(chunk: str, text: str, at: int) -> int | None:
    """Where ``text`` goes on after ``chunk`` matched it from ``at``, None when it does not match there.

    Raises:
        _BadPatternError: the chunk is malformed (checked even once the match failed, as Go does).
    """
    failed = False
    c = 0
    end = len(chunk)
    while c < end:
        if not failed and at >= len(text):
            failed = True
        head = chunk[c]
        if head == "[":
            char = ""
            if not failed:
                char = text[at]
                at += 1
            c += 1
            negated = c < end and chunk[c] == "^"
            if negated:
                c += 1
            found = False
            ranges = 0
            while True:
                if c < end and chunk[c] == "]" and ranges > 0:
                    c += 1
                    break
                low, c = _escaped(chunk, c)
                high = low
                if chunk[c] == "-":
                    high, c = _escaped(chunk, c + 1)
                if not failed and low <= char <= high:
                    found = True
                ranges += 1
            if found == negated:
                failed = True
        elif head == "?":
            if not failed:
                if text[at] == _SEPARATOR:
                    failed = True
                at += 1
            c += 1
        else:
            if head == "\\":
                c += 1
                if c == end:
                    raise _BadPatternError
            if not failed:
                if chunk[c] != text[at]:
                    failed = True
                at += 1
            c += 1
    return None if failed else at


def _escaped(chunk: str, c: int) -> tuple[str, int]:
    """The class character at ``c`` (``\\`` escapes) and where the class goes on (it must: it is open)."""
    if c >= len(chunk) or chunk[c] in "-]":
        raise _BadPatternError
    if chunk[c] == "\\":
        c += 1
        if c >= len(chunk):
            raise _BadPatternError
    if c + 1 >= len(chunk):
        raise _BadPatternError
    return chunk[c], c + 1

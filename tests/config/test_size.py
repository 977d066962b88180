"""Sizes parse the way go-humanize's ParseBytes does (Talos' ByteSize)."""

from __future__ import annotations

import pytest

from volumed.config import parse_size


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10GiB", 10 * 1024**3),
        ("100MB", 100 * 1000**2),
        ("2.5GiB", int(2.5 * 1024**3)),
        ("1048576", 1048576),
        ("1 GB", 1000**3),
        ("1gi", 1024**3),
        ("4k", 4000),
        ("4KiB", 4096),
        ("1,000", 1000),
        ("7B", 7),
        ("1.5", 1),
        ("1TB", 1000**4),
        ("2EiB", 2 * 1024**6),
    ],
)
def test_parse(text: str, value: int) -> None:
    size = parse_size(text)
    assert size.value == value
    assert str(size) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid size '': expected a number followed by an optional unit (e.g. 10GiB)"),
        ("GiB", "invalid size 'GiB': expected a number followed by an optional unit (e.g. 10GiB)"),
        ("1.2.3GB", "invalid size '1.2.3GB': expected a number followed by an optional unit (e.g. 10GiB)"),
        ("10XB", "invalid size '10XB': unknown unit 'xb'"),
        ("100EiB", "invalid size '100EiB': too large"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r".") as raised:
        parse_size(text)
    assert str(raised.value) == message

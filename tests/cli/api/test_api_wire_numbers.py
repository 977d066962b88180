"""An integer too long for Python to convert is a clear protocol error, not Python's advice.

It was ``not a JSON line: Exceeds the limit (4300 digits) for integer string conversion ... use
sys.set_int_max_str_digits() to increase the limit``.
"""

from __future__ import annotations

import pytest

from volumed.cli.api import ApiProtocolError
from volumed.cli.api._wire import MAX_INTEGER_DIGITS, decode


@pytest.mark.parametrize("digits", [MAX_INTEGER_DIGITS + 1, 4301, 100_000])
def test_a_too_long_integer_is_refused_naming_the_limit(digits: int) -> None:
    with pytest.raises(ApiProtocolError) as error:
        decode(b'{"op": "get", "id": -' + b"9" * digits + b"}\n")
    assert str(error.value) == f"not a JSON line: an integer longer than {MAX_INTEGER_DIGITS} digits"


def test_integers_within_the_limit_are_read() -> None:
    assert decode(b'{"n": ' + b"9" * MAX_INTEGER_DIGITS + b', "f": 1.5}\n') == {
        "n": int("9" * MAX_INTEGER_DIGITS),
        "f": 1.5,
    }

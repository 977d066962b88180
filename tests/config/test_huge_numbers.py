"""Numbers longer than Python converts (4300 digits) get the field's own error, never Python's advice.

``minSize: 999...9TiB`` with a million digits was ``provisioning.minSize: Exceeds the limit (4300 digits) for
integer string conversion ... use sys.set_int_max_str_digits()``, and an unquoted long integer anywhere was
``the value cannot be read as int`` at a line, even in a string field where yaml.v3 takes its text.
"""

from __future__ import annotations

import pytest

from volumed.config import check_config
from volumed.config._size import parse_size

LONG = "9" * 5000
USER = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: u
provisioning:
  diskSelector: {{match: 'true'}}
  minSize: {size}
encryption:
  provider: luks2
  keys:
    - slot: {slot}
      static: {{passphrase: {passphrase}}}
"""


def issues_of(text: str) -> list[str]:
    return [str(issue) for issue in check_config(text)[1]]


@pytest.mark.parametrize(
    "size", [LONG, LONG + "TiB", "0" * 5000 + LONG, "'" + LONG + ".5'", "'" + LONG + "'", "1" + "_0" * 5000]
)
def test_a_size_with_thousands_of_digits_is_too_large(size: str) -> None:
    assert issues_of(USER.format(size=size, slot=0, passphrase="p")) == [
        "UserVolumeConfig/u: provisioning.minSize: invalid size: too large"
    ]


@pytest.mark.parametrize("slot", [LONG, "-" + LONG, "1" + "_0" * 5000])
def test_an_integer_field_with_thousands_of_digits_is_out_of_range(slot: str) -> None:
    assert issues_of(USER.format(size="1GiB", slot=slot, passphrase="p")) == [
        "UserVolumeConfig/u: encryption.keys[0].slot: key slot is out of range (0 to 31)"
    ]


def test_a_string_field_takes_the_text_of_a_long_unquoted_number() -> None:
    config, issues = check_config(USER.format(size="1GiB", slot=0, passphrase=LONG))
    assert issues == []
    assert config is not None
    encryption = config.user_volumes[0].encryption
    assert encryption is not None
    static = encryption.keys[0].static
    assert static is not None
    assert static.passphrase.get_secret_value() == LONG


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0" * 5000 + "1KiB", 1024),
        ("1." + "9" * 5000 + "B", 1),
        ("0.0009765625KiB", 1),  # exactly 1/1024 KiB
        ("0.000976562" + "4" * 5000 + "KiB", 0),
        ("18446744073709551615", 2**64 - 1),
    ],
)
def test_long_sizes_within_range_keep_their_exact_whole_bytes(text: str, value: int) -> None:
    assert parse_size(text).value == value

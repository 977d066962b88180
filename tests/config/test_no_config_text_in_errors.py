"""No text of the config reaches an error: a passphrase may be anywhere a parser does not expect it.

An unquoted passphrase starting with ``*`` was echoed as ``found undefined alias 'S3cr3t...'`` by `config
validate` and in ConfigStatus. Errors name documents, field paths, lines and columns and the kind of problem.
"""

from __future__ import annotations

import string
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from volumed.cli import volumed
from volumed.config import check_config

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "S3cr3tPassw0rd"

HEAD = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector: {match: 'disk.size > 1u * GiB'}
  maxSize: 1GiB
encryption:
  provider: luks2
  keys:
    - slot: 0
"""
STATIC = HEAD + "      static:\n        passphrase: "

NODE_ID = "      nodeID: {}\n"


def changed(old: str, new: str) -> str:
    """A document with a nodeID key whose text ``old`` is replaced by ``new``."""
    return HEAD.replace(old, new) + NODE_ID


def selector(expression: str) -> str:
    return changed("disk.size > 1u * GiB", expression)


# (case, config text): each is invalid and holds SECRET where a parser does not expect it.
CASES = [
    ("alias", STATIC + "*" + SECRET + "\n"),
    ("tag", STATIC + "!" + SECRET + "\n"),
    ("anchor then text", STATIC + "&" + SECRET + " *" + SECRET + "x\n"),
    ("directive character", STATIC + "%" + SECRET + "\n"),
    ("reserved character", STATIC + "@" + SECRET + "\n"),
    ("backtick", STATIC + "`" + SECRET + "\n"),
    ("explicit tag that does not fit", STATIC + "!!int " + SECRET + "\n"),
    ("unknown tag handle", STATIC + "!x!" + SECRET + "\n"),
    ("block scalar, bad indentation", STATIC + "|\n          " + SECRET + "\n         " + SECRET + "\n  x"),
    ("folded scalar indented less", STATIC + ">\n  " + SECRET + "\n"),
    ("unterminated double quote", STATIC + '"' + SECRET + "\n"),
    ("bad escape", STATIC + '"\\q' + SECRET + '"\n'),
    ("wrong type: list", STATIC + "[" + SECRET + "]\n"),
    ("wrong type: mapping", STATIC + "{" + SECRET + ": 1}\n"),
    ("as a key of static", HEAD + "      static: {" + SECRET + ": x}\n"),
    ("as a key of the document", HEAD + SECRET + ": 1\n"),
    ("duplicate key", HEAD + "      static: {" + SECRET + ": x, " + SECRET + ": y}\n"),
    ("non-string key", HEAD + "      static: {1.5: x}\n" + "      " + SECRET + ": 1\n"),
    ("as the slot", changed("slot: 0", "slot: " + SECRET)),
    ("as the cipher", HEAD + NODE_ID + "  cipher: " + SECRET + "\n"),
    ("as the provider", changed("provider: luks2", "provider: " + SECRET)),
    ("as a perf option", HEAD + NODE_ID + "  options: [" + SECRET + "]\n"),
    ("as the pbkdf type", HEAD + NODE_ID + "  pbkdf: {type: " + SECRET + "}\n"),
    ("as a size", changed("maxSize: 1GiB", "maxSize: 1" + SECRET)),
    ("as the apiVersion", changed("apiVersion: v1alpha1", "apiVersion: " + SECRET)),
    ("as the volume type", HEAD + NODE_ID + "volumeType: " + SECRET + "\n"),
    ("as the filesystem", HEAD + NODE_ID + "filesystem: {type: " + SECRET + "}\n"),
    ("overlong name", changed("name: data", "name: " + SECRET * 4)),
    ("name with a space", changed("name: data", "name: a " + SECRET)),
    ("in a selector field", selector("disk." + SECRET)),
    ("in a selector name", selector(SECRET + " == 1")),
    ("selector of a string", selector('\\"' + SECRET + '\\"')),
    ("selector syntax", selector("disk.model == " + SECRET + " ==")),
    ("selector glob", selector("glob('[" + SECRET + "', disk.model)")),
    ("selector member", selector("disk['" + SECRET + "'] == 1")),
    (
        "as the name of a VolumeConfig",
        "kind: VolumeConfig\nname: " + SECRET + "\napiVersion: " + SECRET + "\n",
    ),
    ("not a mapping", "*" + SECRET + "\n"),
    ("control character", STATIC + SECRET + "\x01\n"),
]


def assert_not_shown(text: str, secret: str) -> None:
    """Neither the secret nor its first 6 characters are in ``text``."""
    assert secret not in text
    assert secret[:6] not in text


@pytest.mark.parametrize(("text"), [case[1] for case in CASES], ids=[case[0] for case in CASES])
def test_errors_do_not_show_config_text(text: str) -> None:
    config, issues = check_config(text)
    assert config is None
    assert issues
    assert_not_shown("\n".join(str(issue) for issue in issues), SECRET)


def test_the_reported_cases_say_what_is_wrong_and_where() -> None:
    """The faults of the report: each gets its line and column and what to do, not the passphrase."""
    expected = {
        "*": "found an undefined alias (a value that starts with '*' must be quoted)",
        "!": "unknown tag (a value that starts with '!' must be quoted)",
        "%": "found a character that cannot start a value (such a value must be quoted)",
        "@": "found a character that cannot start a value (such a value must be quoted)",
    }
    for start, problem in expected.items():
        _, issues = check_config(STATIC + start + SECRET + "\n")
        assert [str(issue) for issue in issues] == [
            f"document 1: invalid YAML: line 12, column 21: {problem}"
        ]


def test_an_unknown_key_is_pointed_at_not_named() -> None:
    _, issues = check_config(HEAD + "      static: {" + SECRET + ": x}\n")
    assert [str(issue) for issue in issues] == [
        "UserVolumeConfig/data: encryption.keys[0].static: unknown field at line 11, column 16",
        "UserVolumeConfig/data: encryption.keys[0].static.passphrase: static passphrase must not be empty",
    ]


def test_an_unknown_field_name_of_the_schema_is_named() -> None:
    _, issues = check_config(HEAD + "      nodeID: {}\n      passphrase: x\n")
    assert [str(issue) for issue in issues] == [
        "UserVolumeConfig/data: encryption.keys[0].passphrase: unknown field"
    ]


def test_config_validate_does_not_show_it(tmp_path: Path) -> None:
    """The real CLI, in its own process, for the reported cases."""
    for start in "*!&%@":
        path = tmp_path / f"config-{ord(start)}.yaml"
        path.write_text(STATIC + start + SECRET + "\n")
        result = subprocess.run(
            [sys.executable, "-m", "volumed", "config", "validate", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 1, result.stderr
        assert "invalid" in result.stderr
        assert_not_shown(result.stdout + result.stderr, SECRET)


# Random secrets: a marker no error message contains, then any printable text (YAML's indicators included).
SECRETS = st.builds(
    lambda tail: "Zq9" + tail,
    st.text(
        alphabet=string.ascii_letters + string.digits + string.punctuation + " \t", min_size=3, max_size=24
    ),
)
PLACEMENTS = [
    "{lead}{secret}",
    "'{lead}{secret}",
    '"{lead}{secret}',
    "|\n          {secret}\n        {lead}{secret}",
    ">\n {lead}{secret}",
    "\n        {lead}{secret}: x\n        {secret}",
    "[{lead}{secret}",
    "{{{lead}{secret}: {secret}",
    "!{lead}{secret} {secret}",
    "&{lead}{secret}\n        {secret}: 1",
    "x\n      {lead}{secret}: {secret}",
]
LEADS = [
    "",
    "*",
    "!",
    "&",
    "%",
    "@",
    "`",
    "|",
    ">",
    "-",
    "?",
    ":",
    "#",
    "{",
    "[",
    "'",
    '"',
    "!!int ",
    "!!binary ",
]


@given(secret=SECRETS, placement=st.sampled_from(PLACEMENTS), lead=st.sampled_from(LEADS))
def test_random_secrets_in_a_passphrase_are_never_shown(secret: str, placement: str, lead: str) -> None:
    text = STATIC + placement.format(lead=lead, secret=secret) + "\n"
    config, issues = check_config(text)
    if config is None:
        assert_not_shown("\n".join(str(issue) for issue in issues), secret)
    result = CliRunner().invoke(volumed, ["config", "validate", "-"], input=text, catch_exceptions=False)
    assert result.exit_code in (0, 1)
    if result.exit_code == 1:
        assert_not_shown(result.stdout + result.stderr, secret)

"""A YAML escape for a lone surrogate (``"\\ud800"``) is refused where it is, in any scalar.

PyYAML turned it into a lone surrogate, which no UTF-8 consumer takes: `config validate` said valid, and
`volumed run` failed encoding the static passphrase forever. yaml.v3 (like libyaml) refuses the escape.
"""

from __future__ import annotations

import pytest

from volumed.config import check_config

SECRET = "S3cr3tXq"
DOC = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning:
  diskSelector: {{match: '{selector}'}}
  minSize: 1GiB
encryption:
  provider: luks2
  keys:
    - slot: 0
      static: {{passphrase: "{passphrase}"}}
"""


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (DOC.format(selector="true", passphrase=SECRET + "\\ud800"), 11, 28),  # the passphrase
        (DOC.format(selector="true", passphrase=SECRET + "\\udfff"), 11, 28),
        (DOC.format(selector="true", passphrase=SECRET) + f'"{SECRET}\\ud800": 1\n', 12, 1),  # a key
        (
            DOC.format(selector="true", passphrase=SECRET).replace("name: data", f'name: "{SECRET}\\ud801"'),
            3,
            7,
        ),
        (f'kind: Other\nnote: "{SECRET}\\ud800"\n', 2, 7),  # a document volumed ignores too, as Talos
    ],
)
def test_a_lone_surrogate_is_refused_by_position_without_the_text(text: str, line: int, column: int) -> None:
    config, issues = check_config(text)
    assert config is None
    assert [str(issue) for issue in issues] == [
        f"document 1: invalid YAML: line {line}, column {column}: found an invalid Unicode character escape"
        " code (a surrogate)"
    ]
    assert SECRET not in str(issues)


def test_a_surrogate_pair_escape_is_one_character_and_valid() -> None:
    config, issues = check_config(DOC.format(selector="true", passphrase=SECRET + "\\U0001F600"))
    assert issues == []
    assert config is not None

"""A key given twice in one mapping is an error naming the key, the document and both lines (yaml.v3's)."""

from __future__ import annotations

import pytest
import structlog
from click.testing import CliRunner

from volumed.cli import volumed
from volumed.config import check_config

STATE_HEAD = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\n"

CASES = [
    (
        "keys twice",
        STATE_HEAD + "encryption:\n  keys:\n    - nodeID: {}\n  keys:\n    - static: {passphrase: other}\n",
        'document 1: invalid YAML: line 7, column 3: mapping key "keys" already defined at line 5',
    ),
    (
        "name twice",
        STATE_HEAD + "name: EPHEMERAL\n",
        'document 1: invalid YAML: line 4, column 1: mapping key "name" already defined at line 3',
    ),
    (
        "in a list item of a later document",
        "machine: {}\n---\n" + STATE_HEAD + "encryption:\n  keys:\n    - {slot: 0, nodeID: {}, slot: 1}\n",
        'document 2: invalid YAML: line 8, column 29: mapping key "slot" already defined at line 8',
    ),
    (
        "quoted and plain",
        STATE_HEAD + "'name': EPHEMERAL\n",
        'document 1: invalid YAML: line 4, column 1: mapping key "name" already defined at line 3',
    ),
    (
        "in a document volumed ignores",
        "machine: {}\nmachine: {}\n---\n" + STATE_HEAD,
        "document 1: invalid YAML: line 2, column 1: mapping key already defined at line 1",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_duplicate_key_is_rejected(text: str, expected: str) -> None:
    config, issues = check_config(text)
    assert config is None
    assert [str(issue) for issue in issues] == [expected]


def test_config_validate_reports_it() -> None:
    structlog.reset_defaults()
    text = STATE_HEAD + "name: EPHEMERAL\n"
    result = CliRunner().invoke(volumed, ["config", "validate", "-"], input=text, catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (
        1,
        'document 1: invalid YAML: line 4, column 1: mapping key "name" already defined at line 3\n',
    )


def test_an_explicit_key_overrides_a_merged_one() -> None:
    keys = "    - &base {slot: 0, nodeID: {}}\n    - {<<: *base, slot: 1}\n"
    text = STATE_HEAD + "encryption:\n  keys:\n" + keys
    config, issues = check_config(text)
    assert issues == []
    assert config is not None
    state = config.volume("STATE")
    assert state is not None
    assert [key.slot for key in state.encryption.keys] == [0, 1]

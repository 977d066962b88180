"""YAML scalars as Talos (yaml.v3) reads them: a string field gets the text as written, others the value."""

from __future__ import annotations

import json

import anyio
import pytest
import structlog
from click.testing import CliRunner

from volumed.cli import volumed
from volumed.config import check_config, load_config
from volumed.controllers.config._translate import desired_volumes
from volumed.controllers.keys._providers import KeyEnvironment, slot_keys

STATE_WITH_STATIC = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: STATE
encryption:
  provider: luks2
  keys:
    - slot: 2
      static:
        passphrase: {passphrase}
"""

# Plain scalars PyYAML resolves to something else than their text (hex, YAML 1.1 sexagesimal, a float that
# loses its trailing zero, YAML 1.1 octal, underscores, booleans, a date, an infinity, `=`).
AS_WRITTEN = (
    "0x1F",
    "12:30",
    "1.10",
    "010",
    "1_000",
    "1e3",
    "true",
    "yes",
    "Off",
    "2001-12-14",
    "2001-12-14 21:59:43.10",
    ".inf",
    "=",
    "!!int 12:30",
)


def _text_of(written: str) -> str:
    return written.removeprefix("!!int ")


@pytest.fixture(autouse=True)
def fresh_structlog() -> None:
    structlog.reset_defaults()


@pytest.mark.parametrize("written", AS_WRITTEN)
def test_static_passphrase_is_the_text_as_written(written: str) -> None:
    config = load_config(STATE_WITH_STATIC.format(passphrase=written))
    document = config.volume("STATE")
    assert document is not None
    static = document.encryption.keys[0].static
    assert static is not None
    assert static.passphrase.get_secret_value() == _text_of(written)


@pytest.mark.parametrize("written", AS_WRITTEN)
def test_config_validate_accepts_it(written: str) -> None:
    text = STATE_WITH_STATIC.format(passphrase=written)
    result = CliRunner().invoke(volumed, ["config", "validate", "-"], input=text, catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (0, "valid: VolumeConfig/STATE\n")


@pytest.mark.parametrize("written", AS_WRITTEN)
def test_the_enrolled_key_and_meta_hold_the_text_as_written(written: str) -> None:
    expected = _text_of(written).encode()
    state = desired_volumes(load_config(STATE_WITH_STATIC.format(passphrase=written)))[0]
    assert state.volume_id == "STATE"
    assert state.secrets is not None
    assert state.secrets.passphrase(2) == expected
    [slot_key] = slot_keys("STATE", state.config, state.secrets, KeyEnvironment())
    assert slot_key.slot == 2
    assert slot_key.provider is not None
    passphrase = anyio.run(slot_key.provider.get_key, None)
    assert passphrase.reveal() == expected
    meta = json.loads(state.secrets.meta_json.get_secret_value())
    assert meta["EncryptionKeys"][0]["KeyStatic"]["KeyData"] == expected.decode()


@pytest.mark.parametrize("written", ["null", "~", ""])
def test_a_null_passphrase_is_unset(written: str) -> None:
    _, issues = check_config(STATE_WITH_STATIC.format(passphrase=written))
    assert [str(issue) for issue in issues] == [
        "VolumeConfig/STATE: encryption.keys[0].static.passphrase: static passphrase must not be empty"
    ]


def test_a_sequence_is_still_not_a_string() -> None:
    _, issues = check_config(STATE_WITH_STATIC.format(passphrase="[0x1F]"))
    assert [str(issue) for issue in issues] == [
        "VolumeConfig/STATE: encryption.keys[0].static.passphrase: expected a string"
    ]


def test_other_string_fields_take_the_text_too() -> None:
    text = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: 0x10
provisioning: {diskSelector: {match: 'true'}, maxSize: 1GiB}
encryption:
  options: [1.10]
  keys: [{kms: {endpoint: 12:30}}]
"""
    _, issues = check_config(text)
    assert [str(issue) for issue in issues] == [
        "UserVolumeConfig/0x10: encryption.options[0]: unsupported perf option"
        " (no_read_workqueue, no_write_workqueue, same_cpu_crypt)"
    ]
    config = load_config(text.replace("options: [1.10]", "options: []"))
    document = config.user_volume("0x10")
    assert document is not None
    kms = document.encryption.keys[0].kms
    assert kms is not None
    assert kms.endpoint == "12:30"


def test_typed_fields_keep_their_values() -> None:
    text = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: data
provisioning: {diskSelector: {match: 'true'}, minSize: 0x400, maxSize: 1_000_000, grow: yes}
encryption:
  keySize: 0x100
  blockSize: 4096
  allowDiscards: on
  keys:
    - slot: 0x1F
      tpm: {options: {pcrs: [0, 07]}, checkSecurebootStatusOnEnroll: true}
"""
    document = load_config(text).user_volume("data")
    assert document is not None
    assert document.provisioning.grow is True
    assert document.provisioning.min_size is not None
    assert document.provisioning.min_size.value == 1024
    assert document.provisioning.max_size is not None
    assert document.provisioning.max_size.value == 1_000_000
    encryption = document.encryption
    assert (encryption.key_size, encryption.block_size, encryption.allow_discards) == (256, 4096, True)
    [key] = encryption.keys
    assert key.slot == 31
    assert key.tpm is not None
    assert key.tpm.effective_pcrs == (0, 7)
    assert key.tpm.check_secureboot_status_on_enroll is True


def test_typed_fields_still_reject_other_types() -> None:
    text = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: STATE
encryption:
  keySize: '256'
  allowDiscards: 1
  keys: [{slot: true, nodeID: {}}]
"""
    _, issues = check_config(text)
    assert [str(issue) for issue in issues] == [
        "VolumeConfig/STATE: encryption.keys[0].slot: expected an integer",
        "VolumeConfig/STATE: encryption.keySize: expected an integer",
        "VolumeConfig/STATE: encryption.allowDiscards: expected a boolean",
    ]


@pytest.mark.parametrize("tag", ["bool", "timestamp", "int", "float"])
def test_an_explicit_tag_that_does_not_fit_is_an_error_without_the_value(tag: str) -> None:
    """`!!bool hunter2secret` crashed the loader with the passphrase in the traceback and in the run log."""
    text = STATE_WITH_STATIC.format(passphrase=f"!!{tag} hunter2secret")
    _, issues = check_config(text)
    assert [str(issue) for issue in issues] == [
        f"document 1: invalid YAML: line 9, column 21: the value cannot be read as {tag}"
    ]
    result = CliRunner().invoke(volumed, ["config", "validate", "-"], input=text)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "hunter2secret" not in result.output


def test_base_60_numbers_are_text_as_in_yaml_v3() -> None:
    """YAML 1.1 reads `8:32` as 512; yaml.v3 reads text, which Talos then refuses for a number field."""
    text = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: STATE
encryption:
  keySize: 8:32
  blockSize: 1:8:16
  keys: [{slot: 0, nodeID: {}}]
"""
    _, issues = check_config(text)
    assert [str(issue) for issue in issues] == [
        "VolumeConfig/STATE: encryption.keySize: expected an integer",
        "VolumeConfig/STATE: encryption.blockSize: expected an integer",
    ]

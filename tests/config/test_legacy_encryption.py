"""``machine.systemDiskEncryption`` of the v1alpha1 machine config document (Talos' legacy block).

Talos v1.12 takes STATE's and EPHEMERAL's encryption from their VolumeConfig's ``encryption`` and, when that
has none, from this block (``controllers/block/volume_config.go`` ``setupStateEncryption``,
``volumeconfig/system_volumes.go``). Field names and rules are v1alpha1's
(``pkg/machinery/config/types/v1alpha1/v1alpha1_types.go`` ``EncryptionConfig``, ``v1alpha1_validation.go``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from volumed.config import (
    EPHEMERAL,
    STATE,
    ConfigInvalidError,
    KeyKind,
    check_config,
    encryption_from_meta_json,
    encryption_to_meta_json,
    load_config,
)
from volumed.controllers.config._translate import desired_volumes

MACHINE = """\
version: v1alpha1
debug: false
machine:
  type: controlplane
  token: abc.def
  install: {disk: /dev/sda, wipe: false}
  network: {hostname: node-1, interfaces: [{interface: eth0, dhcp: true}]}
  systemDiskEncryption:
{block}cluster:
  clusterName: demo
  controlPlane: {endpoint: "https://1.2.3.4:6443"}
"""


def machine(block: str) -> str:
    """A v1alpha1 document with other fields volumed ignores and ``block`` (indented by 4) as the legacy
    block."""
    return MACHINE.replace("{block}", "".join(f"    {line}\n" for line in block.splitlines()))


STATE_AND_EPHEMERAL = """\
state:
  provider: luks2
  keys:
    - nodeID: {}
      slot: 0
    - static: {passphrase: state-secret}
      slot: 1
ephemeral:
  keys:
    - kms: {endpoint: "https://kms.example:443"}
      slot: 0
    - tpm: {checkSecurebootStatusOnEnroll: true}
      slot: 1
  cipher: aes-xts-plain64
  keySize: 256
  blockSize: 4096
  options: [no_read_workqueue]
"""

EPHEMERAL_DOC = """\
---
apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
provisioning: {maxSize: 10GiB}
"""


def issues_of(text: str) -> list[str]:
    config, issues = check_config(text)
    assert config is None
    return [str(issue) for issue in issues]


def test_legacy_block_is_the_encryption_of_state_and_ephemeral() -> None:
    config = load_config(machine(STATE_AND_EPHEMERAL))
    assert config.volumes == ()  # no VolumeConfig documents were written
    assert config.ignored == 0
    state = config.volume(STATE)
    ephemeral = config.volume(EPHEMERAL)
    assert state is not None
    assert ephemeral is not None
    state_enc = state.effective_encryption
    ephemeral_enc = ephemeral.effective_encryption
    assert state_enc is not None
    assert ephemeral_enc is not None
    assert [(key.slot, key.kind) for key in state_enc.sorted_keys()] == [
        (0, KeyKind.NODE_ID),
        (1, KeyKind.STATIC),
    ]
    static = state_enc.keys[1].static
    assert static is not None
    assert static.passphrase.get_secret_value() == "state-secret"
    assert state_enc.effective_provider == "luks2"
    assert [(key.slot, key.kind) for key in ephemeral_enc.sorted_keys()] == [
        (0, KeyKind.KMS),
        (1, KeyKind.TPM),
    ]
    kms, tpm = ephemeral_enc.keys[0].kms, ephemeral_enc.keys[1].tpm
    assert kms is not None
    assert tpm is not None
    assert kms.endpoint == "https://kms.example:443"
    assert tpm.effective_pcrs == (7,)  # v1alpha1 TPM keys always bind PCR 7 (EncryptionKeyTPM.PCRs)
    assert tpm.check_secureboot_status_on_enroll is True
    assert ephemeral_enc.effective_provider == "luks2"  # an empty provider means luks2 (Provider())
    assert (ephemeral_enc.effective_cipher, ephemeral_enc.effective_key_size_bits) == ("aes-xts-plain64", 256)
    assert (ephemeral_enc.effective_block_size, ephemeral_enc.perf_options) == (4096, ("no_read_workqueue",))
    assert ephemeral_enc.pbkdf is None
    assert not ephemeral_enc.discards_allowed
    assert not any(key.locked_to_state for key in ephemeral_enc.keys)


def test_a_volume_config_without_encryption_gets_the_legacy_block() -> None:
    config = load_config(machine(STATE_AND_EPHEMERAL) + EPHEMERAL_DOC)
    (written,) = config.volumes
    assert written.effective_encryption is None  # the document as written is kept
    ephemeral = config.volume(EPHEMERAL)
    assert ephemeral is not None
    assert ephemeral.provisioning.max_size is not None
    assert ephemeral.provisioning.max_size.value == 10 << 30  # its own provisioning stays
    encryption = ephemeral.effective_encryption
    assert encryption is not None
    assert [key.kind for key in encryption.keys] == [KeyKind.KMS, KeyKind.TPM]


def test_a_volume_config_with_encryption_and_the_legacy_block_is_refused() -> None:
    """Talos' ``V1Alpha1ConflictValidate``: encryption for one volume in both places refuses the config (it
    was accepted and the legacy block silently dropped)."""
    own = (
        "---\napiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\n"
        "encryption:\n  provider: luks2\n  keys: [{slot: 3, nodeID: {}}]\n"
    )
    assert issues_of(machine(STATE_AND_EPHEMERAL) + own) == [
        'VolumeConfig/STATE: encryption: system disk encryption for "STATE" is configured in both'
        " v1alpha1.Config and VolumeConfig"
    ]


def test_a_volume_config_with_provider_none_falls_back_to_the_legacy_block() -> None:
    """Talos: ``VolumeConfig.Encryption()`` is nil for provider none, so the legacy block applies."""
    own = "---\napiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\nencryption: {provider: none}\n"
    state = load_config(machine(STATE_AND_EPHEMERAL) + own).volume(STATE)
    assert state is not None
    encryption = state.effective_encryption
    assert encryption is not None
    assert [key.kind for key in encryption.keys] == [KeyKind.NODE_ID, KeyKind.STATIC]


def test_other_v1alpha1_fields_stay_ignored() -> None:
    text = "version: v1alpha1\nmachine:\n  type: worker\n  bogus: {anything: [1, 2]}\nnonsense: 5\n"
    config = load_config(text + EPHEMERAL_DOC)
    assert config.ignored == 1  # the v1alpha1 document has no legacy block: nothing of it is read
    assert config.volume(STATE) is None
    ephemeral = config.volume(EPHEMERAL)
    assert ephemeral is not None
    assert ephemeral.effective_encryption is None
    assert load_config("version: v1alpha1\n").ignored == 1


def test_a_document_with_a_kind_is_not_the_machine_config() -> None:
    text = (
        "version: v1alpha1\nkind: NetworkDefaultActionConfig\nmachine: {systemDiskEncryption: {state: {}}}\n"
    )
    assert load_config(text).volume(STATE) is None


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        pytest.param(
            "state:\n  keys:\n    - nodeID: {}\n      lockToState: true\n",
            ["v1alpha1: machine.systemDiskEncryption.state.keys[0].lockToState: unknown field"],
            id="no lockToState in v1alpha1",
        ),
        pytest.param(
            "state:\n  keys: [{slot: 0, tpm: {options: {pcrs: [7]}}}]\n",
            ["v1alpha1: machine.systemDiskEncryption.state.keys[0].tpm.options: unknown field"],
            id="no tpm options in v1alpha1",
        ),
        pytest.param(
            "ephemeral:\n  keys: [{nodeID: {}}]\n  allowDiscards: true\n  pbkdf: {type: argon2id}\n",
            [
                "v1alpha1: machine.systemDiskEncryption.ephemeral.allowDiscards: unknown field",
                "v1alpha1: machine.systemDiskEncryption.ephemeral.pbkdf: unknown field",
            ],
            id="no VolumeConfig extensions in v1alpha1",
        ),
        pytest.param(
            "state:\n  keys: [{nodeID: {}, slott: 1}]\n",
            ["v1alpha1: machine.systemDiskEncryption.state.keys[0]: unknown field at line 10, column 27"],
            id="misspelt field",
        ),
        pytest.param(
            "boot:\n  keys: [{nodeID: {}}]\n",
            ["v1alpha1: machine.systemDiskEncryption: unknown field at line 9, column 5"],
            id="no other partition",
        ),
        pytest.param(
            "state:\n  keys: [{static: {passphrase: s3cr3t-value, extra: 1}}]\n",
            [
                "v1alpha1: machine.systemDiskEncryption.state.keys[0].static: unknown field at line 10,"
                " column 50"
            ],
            id="unknown field next to a passphrase",
        ),
        pytest.param(
            "state:\n  keys: [{slot: one, nodeID: {}}]\n",
            ["v1alpha1: machine.systemDiskEncryption.state.keys[0].slot: expected an integer"],
            id="wrong type",
        ),
    ],
)
def test_the_legacy_block_is_decoded_strictly(block: str, expected: list[str]) -> None:
    issues = issues_of(machine(block))
    assert issues == expected
    assert not any("s3cr3t" in issue for issue in issues)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        pytest.param(
            "ephemeral: {}\n",
            ["v1alpha1: machine.systemDiskEncryption.ephemeral.keys: no encryption keys provided"],
            id="keys required",
        ),
        pytest.param(
            "state:\n  keys: [{nodeID: {}}, {slot: 0, static: {passphrase: x}}]\n",
            [
                "v1alpha1: machine.systemDiskEncryption.state.keys[1].slot: encryption key slot 0 is already"
                " in use"
            ],
            id="slots unique (v1alpha1 wording)",
        ),
        pytest.param(
            "state:\n  keys: [{slot: 2}]\n",
            [
                "v1alpha1: machine.systemDiskEncryption.state.keys[0]: encryption key at slot 2 doesn't have"
                " the configuration parameters"
            ],
            id="key of no kind",
        ),
        pytest.param(
            "state:\n  provider: luks1\n  keys: [{nodeID: {}}]\n",
            [
                "v1alpha1: machine.systemDiskEncryption.state.provider: unsupported encryption provider"
                " (supported: luks2)"
            ],
            id="provider",
        ),
        pytest.param(
            "state:\n  keys: [{nodeID: {}, static: {passphrase: x}}]\n",
            [
                "v1alpha1: machine.systemDiskEncryption.state.keys[0]: only one encryption key type can be"
                " specified, got: static, nodeID"
            ],
            id="two kinds (volumed is stricter than v1alpha1)",
        ),
        pytest.param(
            "ephemeral:\n  keys: [{kms: {}, slot: 40}]\n  cipher: aes-cbc-essiv:sha256\n"
            "  blockSize: 300\n  options: [fast]\n",
            [
                "v1alpha1: machine.systemDiskEncryption.ephemeral.keys[0].slot: key slot is out of range"
                " (0 to 31)",
                "v1alpha1: machine.systemDiskEncryption.ephemeral.keys[0].kms.endpoint: KMS endpoint is"
                " required",
                "v1alpha1: machine.systemDiskEncryption.ephemeral.cipher: unsupported cipher (supported:"
                " aes-xts-plain64, xchacha12,aes-adiantum-plain64, xchacha20,aes-adiantum-plain64)",
                "v1alpha1: machine.systemDiskEncryption.ephemeral.blockSize: block size is not one of 512,"
                " 1024, 2048, 4096",
                "v1alpha1: machine.systemDiskEncryption.ephemeral.options[0]: unsupported perf option"
                " (no_read_workqueue, no_write_workqueue, same_cpu_crypt)",
            ],
            id="shared checks",
        ),
    ],
)
def test_the_legacy_block_follows_talos_rules(block: str, expected: list[str]) -> None:
    assert issues_of(machine(block)) == expected


def test_two_machine_config_documents_are_refused() -> None:
    text = machine(STATE_AND_EPHEMERAL) + "---\n" + machine(STATE_AND_EPHEMERAL)
    assert issues_of(text) == ["v1alpha1: duplicate document"]


def test_the_legacy_block_with_errors_names_no_passphrase() -> None:
    with pytest.raises(ConfigInvalidError) as raised:
        load_config(machine("state:\n  keys: [{slot: 0, static: {passphrase: hunter2hunter2}}, {slot: 0}]\n"))
    assert "hunter2" not in str(raised.value)


# --- META tag 9 -------------------------------------------------------------------------------------------
# Worked out by hand from Talos release-1.12: setupStateEncryption marshals
# `cfg.Machine().SystemDiskEncryption().Get("STATE")`, a *v1alpha1.EncryptionConfig, with encoding/json:
# keys are the Go field names in struct order (EncryptionProvider, EncryptionKeys, EncryptionCipher,
# EncryptionKeySize, EncryptionBlockSize, EncryptionPerfOptions), the provider as written ("" when omitted);
# each key is a *v1alpha1.EncryptionKey (KeyStatic, KeyNodeID, KeyKMS, KeySlot, KeyTPM; no KeyLockToSTATE), a
# TPM key is {"TPMCheckSecurebootStatusOnEnroll": *bool}; nil pointers and slices are null. Compare
# encryption_meta_test.go's legacyMarshalled, which has this shape.
TAG9_MINIMAL = (
    b'{"EncryptionProvider":"","EncryptionKeys":[{"KeyStatic":{"KeyData":"secret"},"KeyNodeID":null,"KeyKMS":null,'
    b'"KeySlot":0,"KeyTPM":null},{"KeyStatic":null,"KeyNodeID":{},"KeyKMS":null,"KeySlot":1,"KeyTPM":null}],'
    b'"EncryptionCipher":"aes-xts-plain64","EncryptionKeySize":0,"EncryptionBlockSize":0,'
    b'"EncryptionPerfOptions":null}'
)
TAG9_EVERY_FIELD = (
    b'{"EncryptionProvider":"luks2","EncryptionKeys":['
    b'{"KeyStatic":null,"KeyNodeID":null,"KeyKMS":{"KMSEndpoint":"https://kms.example:443"},"KeySlot":2,'
    b'"KeyTPM":null},'
    b'{"KeyStatic":null,"KeyNodeID":null,"KeyKMS":null,"KeySlot":0,"KeyTPM":{"TPMCheckSecurebootStatusOnEnroll":'
    b"true}},"
    b'{"KeyStatic":null,"KeyNodeID":null,"KeyKMS":null,"KeySlot":1,"KeyTPM":{"TPMCheckSecurebootStatusOnEnroll":'
    b"null}},"
    b'{"KeyStatic":{"KeyData":"a\\u003cb\\u0026"},"KeyNodeID":null,"KeyKMS":null,"KeySlot":3,"KeyTPM":null}],'
    b'"EncryptionCipher":"","EncryptionKeySize":512,"EncryptionBlockSize":512,'
    b'"EncryptionPerfOptions":["same_cpu_crypt","no_write_workqueue"]}'
)


def state_tag9(block: str) -> bytes:
    state = load_config(machine(block)).volume(STATE)
    assert state is not None
    return encryption_to_meta_json(state.effective_encryption)


def test_tag9_for_a_legacy_state_is_talos_v1alpha1_json() -> None:
    assert (
        state_tag9(
            "state:\n  cipher: aes-xts-plain64\n  keys:\n    - static: {passphrase: secret}\n"
            "    - nodeID: {}\n      slot: 1\n"
        )
        == TAG9_MINIMAL
    )
    assert (
        state_tag9(
            "state:\n  provider: luks2\n  keySize: 512\n  blockSize: 512\n"
            "  options: [same_cpu_crypt, no_write_workqueue]\n  keys:\n"
            "    - {slot: 2, kms: {endpoint: 'https://kms.example:443'}}\n"
            "    - {tpm: {checkSecurebootStatusOnEnroll: true}}\n"
            "    - {slot: 1, tpm: {}}\n"
            "    - {slot: 3, static: {passphrase: 'a<b&'}}\n"
        )
        == TAG9_EVERY_FIELD
    )


def test_tag9_of_a_legacy_state_reads_back() -> None:
    """A boot without config reads the tag back (Talos' UnmarshalEncryptionMeta falls back to v1alpha1)."""
    spec = encryption_from_meta_json(TAG9_EVERY_FIELD)
    assert spec is not None
    assert spec.effective_provider == "luks2"
    assert [(key.slot, key.kind) for key in spec.sorted_keys()] == [
        (0, KeyKind.TPM),
        (1, KeyKind.TPM),
        (2, KeyKind.KMS),
        (3, KeyKind.STATIC),
    ]
    assert all(key.tpm.effective_pcrs == (7,) for key in spec.keys if key.tpm is not None)
    minimal = encryption_from_meta_json(TAG9_MINIMAL)
    assert minimal is not None
    assert minimal.effective_provider == "luks2"
    assert [key.kind for key in minimal.keys] == [KeyKind.STATIC, KeyKind.NODE_ID]


def test_tag9_follows_the_precedence() -> None:
    """A STATE VolumeConfig with its own encryption writes the VolumeConfig shape (block.EncryptionSpec, as
    encryption_meta_test.go's modernMarshalled: no EncryptionAllowDiscards in v1.12), also when the legacy
    block configures EPHEMERAL."""
    own = (
        "---\napiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\n"
        "encryption:\n  provider: luks2\n  cipher: aes-xts-plain64\n"
        "  keys: [{slot: 0, static: {passphrase: secret}}]\n"
    )
    state = load_config(machine("ephemeral:\n  keys: [{nodeID: {}}]\n") + own).volume(STATE)
    assert state is not None
    assert encryption_to_meta_json(state.effective_encryption) == (
        b'{"EncryptionProvider":"luks2","EncryptionKeys":[{"KeySlot":0,"KeyStatic":{"KeyData":"secret"},'
        b'"KeyNodeID":null,"KeyKMS":null,"KeyTPM":null,"KeyLockToSTATE":null}],"EncryptionCipher":"aes-xts-plain64",'
        b'"EncryptionKeySize":0,"EncryptionBlockSize":0,"EncryptionPerfOptions":null}'
    )
    only_ephemeral = load_config(machine("ephemeral:\n  keys: [{nodeID: {}}]\n"))
    assert only_ephemeral.volume(STATE) is None  # STATE stays unencrypted: tag 9 is null


def test_the_documented_legacy_tag9_example() -> None:
    """docs/configuration.md shows tag 9 for `state: {keys: [{nodeID: {}, slot: 0}]}`."""
    text = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    found = re.search(r"v1alpha1 struct instead.*?```\n(.*?)\n```", text, flags=re.DOTALL)
    assert found is not None
    shown = found.group(1).encode()
    assert state_tag9("state:\n  keys:\n    - nodeID: {}\n      slot: 0\n") == shown


def test_the_legacy_block_reaches_the_system_volumes() -> None:
    """The config controller's translation (``machine.volume(name).effective_encryption``) gets the legacy
    encryption; STATE's tag 9 bytes are Talos' v1alpha1 JSON, static passphrases the secrets."""
    block = (
        "state:\n  cipher: aes-xts-plain64\n  keys:\n    - static: {passphrase: secret}\n"
        "    - nodeID: {}\n      slot: 1\n"
    )
    block += "ephemeral:\n  keys: [{slot: 0, nodeID: {}}, {slot: 5, kms: {endpoint: 'kms:4050'}}]\n"
    state, ephemeral = desired_volumes(load_config(machine(block)))[:2]
    assert (state.volume_id, ephemeral.volume_id) == (STATE, EPHEMERAL)
    assert state.secrets is not None
    assert state.secrets.meta_json.get_secret_value() == TAG9_MINIMAL
    assert state.secrets.passphrase(0) == b"secret"
    assert state.config.encryption is not None
    assert [(key.slot, key.kind.value) for key in state.config.encryption.keys] == [
        (0, "static"),
        (1, "nodeID"),
    ]
    assert ephemeral.config.encryption is not None
    assert [(key.slot, key.kind.value, key.kms_endpoint) for key in ephemeral.config.encryption.keys] == [
        (0, "nodeID", ""),
        (5, "kms", "kms:4050"),
    ]
    assert ephemeral.config.encryption.pbkdf is None  # v1alpha1 has none: cryptsetup's default argon2id

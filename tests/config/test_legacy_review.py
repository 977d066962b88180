"""The legacy block against Talos v1.12: conflicts, provider case, strict field names, tag 9 key kinds.

Sources (Talos release-1.12): ``config/types/block/volume_config.go`` ``V1Alpha1ConflictValidate`` (called by
``config/container/container.go`` ``Validate``), ``v1alpha1_provider.go`` ``EncryptionConfig.Provider`` and
``resources/block/volumetype_enumer.go`` ``EncryptionProviderTypeString`` (falls back to lower case),
``machined/pkg/adapters/block/volume_config.go`` (a key's kind: static, then nodeID, kms, tpm).
"""

from __future__ import annotations

import pytest

from volumed.config import (
    EPHEMERAL,
    STATE,
    KeyKind,
    check_config,
    encryption_from_meta_json,
    encryption_to_meta_json,
    load_config,
)

LEGACY = """\
version: v1alpha1
machine:
  systemDiskEncryption:
    state:
      keys: [{static: {passphrase: LegacyStateSecret}}]
    ephemeral:
      keys: [{nodeID: {}}]
"""


def volume_config(name: str, body: str) -> str:
    return f"---\napiVersion: v1alpha1\nkind: VolumeConfig\nname: {name}\n{body}"


def issues_of(text: str) -> list[str]:
    config, issues = check_config(text)
    assert config is None
    return [str(issue) for issue in issues]


# F1: Talos' container.Validate refuses encryption configured in both places.


@pytest.mark.parametrize("name", [STATE, EPHEMERAL])
def test_encryption_in_both_the_legacy_block_and_a_volume_config_is_refused(name: str) -> None:
    own = volume_config(name, "encryption:\n  provider: luks2\n  keys: [{slot: 3, nodeID: {}}]\n")
    for text in (LEGACY + own, own.removeprefix("---\n") + "---\n" + LEGACY):
        assert issues_of(text) == [
            f'VolumeConfig/{name}: encryption: system disk encryption for "{name}" is configured in both'
            " v1alpha1.Config and VolumeConfig"
        ]


def test_the_review_config_with_both_blocks_is_refused() -> None:
    text = (
        "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: foo\n---\n"
        + LEGACY
        + volume_config(EPHEMERAL, "provisioning: {maxSize: 5GiB}\n")
        + volume_config(STATE, "encryption:\n  keys: [{slot: 0, tpm: {options: {pcrs: [7]}}}]\n")
    )
    assert issues_of(text) == [
        'VolumeConfig/STATE: encryption: system disk encryption for "STATE" is configured in both'
        " v1alpha1.Config and VolumeConfig"
    ]


def test_no_conflict_without_the_legacy_block_of_that_volume() -> None:
    legacy_state_only = LEGACY.split("    ephemeral:")[0]
    own = volume_config(EPHEMERAL, "encryption:\n  provider: luks2\n  keys: [{nodeID: {}}]\n")
    config = load_config(legacy_state_only + own)
    ephemeral = config.volume(EPHEMERAL)
    assert ephemeral is not None
    assert ephemeral.effective_encryption is not None


def test_a_volume_config_with_provider_none_is_no_conflict() -> None:
    """``VolumeConfig.Encryption()`` is nil for provider none: Talos sees no conflict."""
    config = load_config(LEGACY + volume_config(STATE, "encryption: {provider: none}\n"))
    state = config.volume(STATE)
    assert state is not None
    encryption = state.effective_encryption
    assert encryption is not None
    assert [key.kind for key in encryption.keys] == [KeyKind.STATIC]


# F2: the provider is case-insensitive (enumer's EncryptionProviderTypeString tries the lower-cased text).

UPPER_LEGACY = """\
version: v1alpha1
machine:
  systemDiskEncryption:
    state:
      provider: {provider}
      keys:
        - nodeID: {{}}
"""


@pytest.mark.parametrize("provider", ["LUKS2", "Luks2", "luks2"])
def test_the_legacy_provider_is_case_insensitive(provider: str) -> None:
    config = load_config(UPPER_LEGACY.format(provider=provider))
    state = config.volume(STATE)
    assert state is not None
    encryption = state.effective_encryption
    assert encryption is not None
    assert encryption.effective_provider == "luks2"
    # Tag 9 keeps the provider as written (Talos marshals the v1alpha1 string) and reads it back.
    data = encryption_to_meta_json(encryption)
    assert data.startswith(b'{"EncryptionProvider":"' + provider.encode() + b'"')
    back = encryption_from_meta_json(data)
    assert back is not None
    assert back.effective_provider == "luks2"
    assert [key.kind for key in back.keys] == [KeyKind.NODE_ID]


@pytest.mark.parametrize("provider", ["LUKS2", "Luks2"])
def test_the_volume_config_provider_is_case_insensitive(provider: str) -> None:
    own = volume_config(EPHEMERAL, f"encryption:\n  provider: {provider}\n  keys: [{{nodeID: {{}}}}]\n")
    config = load_config(own.removeprefix("---\n"))
    ephemeral = config.volume(EPHEMERAL)
    assert ephemeral is not None
    encryption = ephemeral.effective_encryption
    assert encryption is not None
    assert encryption.effective_provider == "luks2"
    assert encryption_to_meta_json(encryption).startswith(b'{"EncryptionProvider":"luks2"')


def test_provider_none_in_capitals_is_no_encryption() -> None:
    own = volume_config(EPHEMERAL, "encryption: {provider: NONE}\n").removeprefix("---\n")
    ephemeral = load_config(own).volume(EPHEMERAL)
    assert ephemeral is not None
    assert ephemeral.effective_encryption is None


def test_an_unknown_provider_names_the_supported_one() -> None:
    assert issues_of(UPPER_LEGACY.format(provider="luks1")) == [
        "v1alpha1: machine.systemDiskEncryption.state.provider: unsupported encryption provider"
        " (supported: luks2)"
    ]


def test_tag9_with_an_upper_case_provider_opens_state() -> None:
    """A no-config boot never set STATE up: tag 9 ``"Provider":"LUKS2"`` was refused."""
    data = (
        b'{"EncryptionProvider":"LUKS2","EncryptionKeys":[{"KeyStatic":null,"KeyNodeID":{},"KeyKMS":null,'
        b'"KeySlot":0,"KeyTPM":null}],"EncryptionCipher":"","EncryptionKeySize":0,"EncryptionBlockSize":0,'
        b'"EncryptionPerfOptions":null}'
    )
    spec = encryption_from_meta_json(data)
    assert spec is not None
    assert spec.effective_provider == "luks2"
    assert [(key.slot, key.kind) for key in spec.keys] == [(0, KeyKind.NODE_ID)]


@pytest.mark.parametrize(
    ("kinds", "kind"),
    [
        ('"KeyStatic":{"KeyData":"S3cretTwo"},"KeyNodeID":{}', KeyKind.STATIC),
        ('"KeyNodeID":{},"KeyKMS":{"KMSEndpoint":"https://kms:1"}', KeyKind.NODE_ID),
        ('"KeyKMS":{"KMSEndpoint":"https://kms:1"},"KeyTPM":{}', KeyKind.KMS),
        ('"KeyTPM":{},"KeyStatic":{"KeyData":"S3cretTwo"}', KeyKind.STATIC),
    ],
)
def test_a_tag9_key_with_two_kinds_is_read_as_talos_does(kinds: str, kind: KeyKind) -> None:
    """Talos' adapter takes the first of static, nodeID, kms, tpm; v1alpha1 lets such keys pass."""
    data = ('{"EncryptionProvider":"","EncryptionKeys":[{' + kinds + ',"KeySlot":0}]}').encode()
    spec = encryption_from_meta_json(data)
    assert spec is not None
    (key,) = spec.keys
    assert key.kinds == (kind,)


# F3: user input is decoded by Talos' field names only, never by volumed's Python names.


MISSPELT_MACHINE = (
    'v1alpha1: machine: unknown field "system_disk_encryption" (did you mean "systemDiskEncryption"?)'
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: v1alpha1\nmachine:\n  system_disk_encryption:\n    state:\n"
            "      keys: [{nodeID: {}}]\n",
            [MISSPELT_MACHINE + " at line 3, column 3"],
        ),
        (
            "version: v1alpha1\nmachine:\n  systemDiskEncryption:\n    state:\n      key_size: 256\n"
            "      keys: [{node_id: {}}]\n",
            [
                (
                    "v1alpha1: machine.systemDiskEncryption.state.keys[0].node_id: unknown field"
                    ' (did you mean "nodeID"?)'
                ),
                (
                    "v1alpha1: machine.systemDiskEncryption.state.key_size: unknown field"
                    ' (did you mean "keySize"?)'
                ),
            ],
        ),
        (
            "version: v1alpha1\nmachine:\n  systemDiskEncryption:\n    ephemeral:\n"
            "      keys: [{nodeID: {}}]\n"
            "  system_disk_encryption:\n    state:\n      keys: [{static: {passphrase: x}}]\n",
            [MISSPELT_MACHINE + " at line 6, column 3"],
        ),
        (
            "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nencryption:\n  provider: luks2\n"
            "  key_size: 256\n  keys: [{slot: 0, node_id: {}, lock_to_state: true}]\n",
            [
                (
                    "VolumeConfig/EPHEMERAL: encryption.keys[0].node_id: unknown field"
                    ' (did you mean "nodeID"?)'
                ),
                (
                    "VolumeConfig/EPHEMERAL: encryption.keys[0].lock_to_state: unknown field"
                    ' (did you mean "lockToState"?)'
                ),
                ('VolumeConfig/EPHEMERAL: encryption.key_size: unknown field (did you mean "keySize"?)'),
            ],
        ),
        (
            "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\nprovisioning:\n"
            "  disk_selector: {match: 'true'}\n  max_size: 1GiB\n",
            [
                (
                    "UserVolumeConfig/data: provisioning.disk_selector: unknown field"
                    ' (did you mean "diskSelector"?)'
                ),
                ('UserVolumeConfig/data: provisioning.max_size: unknown field (did you mean "maxSize"?)'),
            ],
        ),
    ],
    ids=["machine", "legacy block", "both spellings", "volume config", "user volume config"],
)
def test_python_field_names_are_unknown_fields(text: str, expected: list[str]) -> None:
    assert sorted(issues_of(text)) == sorted(expected)


def test_tag9_still_reads_every_field() -> None:
    """The tag 9 reader builds its input with the documents' field names (aliases): nothing is lost."""
    data = (
        b'{"EncryptionProvider":"luks2","EncryptionKeys":[{"KeySlot":1,"KeyStatic":null,"KeyNodeID":{},'
        b'"KeyKMS":null,"KeyTPM":null,"KeyLockToSTATE":null},{"KeySlot":2,"KeyTPM":{"TPMOptions":{"PCRs":[7]},'
        b'"TPMCheckSecurebootStatusOnEnroll":true}}],"EncryptionCipher":"aes-xts-plain64",'
        b'"EncryptionKeySize":512,"EncryptionBlockSize":4096,"EncryptionPerfOptions":["same_cpu_crypt"],'
        b'"EncryptionAllowDiscards":true,"EncryptionPBKDF":{"Type":"argon2id","Memory":32,"Iterations":4,'
        b'"Parallel":1}}'
    )
    spec = encryption_from_meta_json(data)
    assert spec is not None
    assert (spec.cipher, spec.key_size, spec.block_size, spec.options) == (
        "aes-xts-plain64",
        512,
        4096,
        ["same_cpu_crypt"],
    )
    assert spec.allow_discards is True
    assert spec.pbkdf is not None
    assert (spec.pbkdf.type, spec.pbkdf.memory, spec.pbkdf.iterations, spec.pbkdf.parallel) == (
        "argon2id",
        32,
        4,
        1,
    )
    tpm = spec.keys[1].tpm
    assert tpm is not None
    assert tpm.check_secureboot_status_on_enroll is True
    assert encryption_from_meta_json(encryption_to_meta_json(spec)) == spec


# F7: a misspelt field is named when it is a field name in another case or spelling.


def test_a_misspelt_legacy_key_is_named() -> None:
    text = "version: v1alpha1\nmachine:\n  systemDiskEncryption:\n    state:\n      keys:\n"
    text += "        - nodeId: {}\n"
    assert issues_of(text) == [
        "v1alpha1: machine.systemDiskEncryption.state.keys[0]:"
        ' unknown field "nodeId" (did you mean "nodeID"?) at line 6, column 11'
    ]


def test_a_misspelt_volume_config_key_is_named() -> None:
    text = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nencryption:\n  KeySize: 256\n"
    assert issues_of(text) == [
        'VolumeConfig/EPHEMERAL: encryption: unknown field "KeySize" (did you mean "keySize"?) at line 5,'
        " column 3"
    ]

"""STATE's encryption as JSON in META tag 9: Go's encoding, byte for byte, and back."""

from __future__ import annotations

import pytest

from volumed.config import (
    EncryptionSpec,
    MetaEncryptionError,
    encryption_from_meta_json,
    encryption_to_meta_json,
    load_config,
)

# Talos' test vector (release-1.12 internal/.../volumes/encryption_meta_test.go modernMarshalled, first key):
# v1.12's block.EncryptionSpec has no EncryptionAllowDiscards (talos-v1.12-facts.md, "Small format facts").
NOTES_EXAMPLE = (
    b'{"EncryptionProvider":"luks2","EncryptionKeys":[{"KeySlot":0,"KeyStatic":{"KeyData":"secret"},"KeyNodeID":null,'
    b'"KeyKMS":null,"KeyTPM":null,"KeyLockToSTATE":null}],"EncryptionCipher":"aes-xts-plain64","EncryptionKeySize":0,'
    b'"EncryptionBlockSize":0,"EncryptionPerfOptions":null}'
)
# What Talos wrote before VolumeConfig (v1alpha1.EncryptionConfig): still readable.
LEGACY = (
    b'{"EncryptionProvider":"","EncryptionKeys":[{"KeyStatic":{"KeyData":"secret"},"KeyNodeID":null,"KeyKMS":null,'
    b'"KeySlot":0,"KeyTPM":null},{"KeyStatic":null,"KeyNodeID":{},"KeyKMS":null,"KeySlot":1,"KeyTPM":null}],'
    b'"EncryptionCipher":"aes-xts-plain64","EncryptionKeySize":0,"EncryptionBlockSize":0,"EncryptionPerfOptions":null}'
)


def state_encryption(body: str) -> EncryptionSpec:
    config = load_config("apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\nencryption:\n" + body)
    document = config.volume("STATE")
    assert document is not None
    return document.encryption


def test_notes_example_byte_for_byte() -> None:
    spec = state_encryption(
        "  provider: luks2\n  cipher: aes-xts-plain64\n  keys:\n    - slot: 0\n      static: {passphrase:"
        " secret}\n"
    )
    assert encryption_to_meta_json(spec) == NOTES_EXAMPLE


def test_notes_example_round_trips() -> None:
    spec = encryption_from_meta_json(NOTES_EXAMPLE)
    assert spec is not None
    assert encryption_to_meta_json(spec) == NOTES_EXAMPLE


def test_every_field() -> None:
    spec = state_encryption(
        "  provider: luks2\n  keySize: 256\n  blockSize: 4096\n  options: [same_cpu_crypt]\n "
        " allowDiscards: true\n"
        "  keys:\n"
        "    - {slot: 0, nodeID: {}}\n"
        "    - {slot: 1, kms: {endpoint: 'https://kms:443'}}\n"
        "    - {slot: 2, tpm: {options: {pcrs: [7]}, checkSecurebootStatusOnEnroll: true}}\n"
        "    - {slot: 3, tpm: {}}\n"
    )
    expected = (
        b'{"EncryptionProvider":"luks2","EncryptionKeys":['
        b'{"KeySlot":0,"KeyStatic":null,"KeyNodeID":{},"KeyKMS":null,"KeyTPM":null,"KeyLockToSTATE":null},'
        b'{"KeySlot":1,"KeyStatic":null,"KeyNodeID":null,"KeyKMS":{"KMSEndpoint":"https://kms:443"},"KeyTPM":null,'
        b'"KeyLockToSTATE":null},'
        b'{"KeySlot":2,"KeyStatic":null,"KeyNodeID":null,"KeyKMS":null,"KeyTPM":{"TPMOptions":{"PCRs":[7]},'
        b'"TPMCheckSecurebootStatusOnEnroll":true},"KeyLockToSTATE":null},'
        b'{"KeySlot":3,"KeyStatic":null,"KeyNodeID":null,"KeyKMS":null,"KeyTPM":{"TPMOptions":null,'
        b'"TPMCheckSecurebootStatusOnEnroll":null},"KeyLockToSTATE":null}],'
        b'"EncryptionCipher":"","EncryptionKeySize":256,"EncryptionBlockSize":4096,'
        b'"EncryptionPerfOptions":["same_cpu_crypt"],"EncryptionAllowDiscards":true}'
    )
    assert encryption_to_meta_json(spec) == expected
    back = encryption_from_meta_json(expected)
    assert back is not None
    assert encryption_to_meta_json(back) == expected


def test_go_string_escaping() -> None:
    spec = state_encryption('  keys:\n    - static: {passphrase: "a<b>&c\\"d\\\\e\\n\\u0001\\u2028é"}\n')
    encoded = encryption_to_meta_json(spec)
    assert b'"KeyData":"a\\u003cb\\u003e\\u0026c\\"d\\\\e\\n\\u0001\\u2028\xc3\xa9"' in encoded
    back = encryption_from_meta_json(encoded)
    assert back is not None
    assert back.keys[0].static is not None
    assert back.keys[0].static.passphrase.get_secret_value() == 'a<b>&c"d\\e\n\x01\u2028é'


def test_pbkdf_extension_is_appended_only_when_set() -> None:
    spec = state_encryption("  keys: [{nodeID: {}}]\n  pbkdf: {type: argon2id, iterations: 4}\n")
    encoded = encryption_to_meta_json(spec)
    assert encoded.endswith(
        b'"EncryptionPerfOptions":null,"EncryptionPBKDF":{"Type":"argon2id","Memory":null,"Iterations":4,'
        b'"Parallel":null}}'
    )
    back = encryption_from_meta_json(encoded)
    assert back is not None
    assert back.pbkdf is not None
    assert back.pbkdf.iterations == 4


def test_no_encryption_is_null() -> None:
    assert encryption_to_meta_json(None) == b"null"
    assert encryption_to_meta_json(EncryptionSpec()) == b"null"
    assert encryption_from_meta_json(b"null") is None


def test_legacy_form() -> None:
    spec = encryption_from_meta_json(LEGACY)
    assert spec is not None
    assert spec.effective_provider == "luks2"
    assert [(key.slot, key.kind) for key in spec.keys] == [(0, "static"), (1, "nodeID")]


def test_field_names_are_case_insensitive_and_unknown_fields_ignored() -> None:
    spec = encryption_from_meta_json(
        b'{"encryptionprovider":"luks2","encryptionKeys":[{"keynodeid":{}}],"Other":1}'
    )
    assert spec is not None
    assert spec.keys[0].kind == "nodeID"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "tag 9: not valid JSON (JSONDecodeError)"),
        (b"\xff", "tag 9: not valid JSON (UnicodeDecodeError)"),
        (b"[]", "tag 9: value: expected an object, got list"),
        (b'{"EncryptionKeys":{}}', "tag 9: EncryptionKeys: expected an array, got dict"),
        (b'{"EncryptionKeys":[null]}', "tag 9: EncryptionKeys[0]: expected an object, got null"),
        (
            b'{"EncryptionKeys":[{"KeyStatic":5}]}',
            "tag 9: EncryptionKeys[0].KeyStatic: expected an object, got int",
        ),
        (
            b'{"EncryptionKeySize":"x","EncryptionKeys":[{"KeyNodeID":{}}]}',
            "tag 9: keySize: Input should be a valid integer",
        ),
        (
            b'{"EncryptionProvider":"luks2","EncryptionKeys":[]}',
            "tag 9: encryption.keys: encryption keys are required",
        ),
        (
            b'{"EncryptionKeys":[{"KeyNodeID":{},"KeyLockToSTATE":true}]}',
            'tag 9: encryption.keys[0].lockToState: state-locked key is not allowed for the "STATE" volume',
        ),
    ],
)
def test_errors(data: bytes, message: str) -> None:
    with pytest.raises(MetaEncryptionError) as raised:
        encryption_from_meta_json(data)
    assert str(raised.value) == message


def test_errors_do_not_leak_passphrases() -> None:
    with pytest.raises(MetaEncryptionError) as raised:
        encryption_from_meta_json(
            b'{"EncryptionKeys":[{"KeyStatic":{"KeyData":"hunter2"},"KeySlot":"hunter2"}]}'
        )
    assert "hunter2" not in str(raised.value)

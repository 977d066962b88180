"""A TPM key's PCRs as Talos 1.12 takes them (``EncryptionKeyTPM.PCRs``): PCR 7 only when ``options`` is
absent; ``options`` present without ``pcrs`` binds no PCR (Go's nil slice), only the signed PCR 11. The same
through META tag 9, where Talos writes such a key as ``"TPMOptions":{"PCRs":null}``."""

from __future__ import annotations

import pytest

from volumed.config import encryption_from_meta_json, encryption_to_meta_json, load_config
from volumed.config._encryption import TPMKey


@pytest.mark.parametrize(
    ("document", "pcrs"),
    [
        ({}, (7,)),
        ({"options": {}}, ()),
        ({"options": {"pcrs": []}}, ()),
        ({"options": {"pcrs": [7]}}, (7,)),
        ({"options": {"pcrs": [0, 7]}}, (0, 7)),
        ({"options": {"volumedPcrOnly": True}}, (7,)),  # the extension needs a PCR: its own default
    ],
)
def test_effective_pcrs_follow_talos(document: dict[str, object], pcrs: tuple[int, ...]) -> None:
    assert TPMKey.model_validate(document).effective_pcrs == pcrs


def _meta(tpm_options: bytes) -> bytes:
    return (
        b'{"EncryptionProvider":"luks2","EncryptionKeys":[{"KeySlot":0,"KeyStatic":null,"KeyNodeID":null,'
        b'"KeyKMS":null,"KeyTPM":{"TPMOptions":' + tpm_options + b',"TPMCheckSecurebootStatusOnEnroll":null},'
        b'"KeyLockToSTATE":null}],"EncryptionCipher":"","EncryptionKeySize":0,"EncryptionBlockSize":0,'
        b'"EncryptionPerfOptions":null}'
    )


@pytest.mark.parametrize(
    ("tpm_options", "pcrs"), [(b'{"PCRs":null}', ()), (b"null", (7,)), (b'{"PCRs":[7]}', (7,))]
)
def test_meta_tag9_read_back(tpm_options: bytes, pcrs: tuple[int, ...]) -> None:
    spec = encryption_from_meta_json(_meta(tpm_options))
    assert spec is not None
    [key] = spec.keys
    assert key.tpm is not None
    assert key.tpm.effective_pcrs == pcrs
    assert encryption_to_meta_json(spec) == _meta(tpm_options)


def test_options_without_pcrs_written_and_read_back_bind_none() -> None:
    config = load_config(
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\nencryption:\n  provider: luks2\n"
        "  keys:\n    - {slot: 0, tpm: {options: {}}}\n"
    )
    document = config.volume("STATE")
    assert document is not None
    written = encryption_to_meta_json(document.encryption)
    assert written == _meta(b'{"PCRs":null}')
    spec = encryption_from_meta_json(written)
    assert spec is not None
    assert spec.keys[0].tpm is not None
    assert spec.keys[0].tpm.effective_pcrs == ()

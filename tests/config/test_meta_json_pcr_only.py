"""A STATE TPM key's ``volumedPcrOnly`` through META tag 9: kept as an extra ``VolumedPCROnly`` field of
``TPMOptions`` when set, so a boot without config still unseals STATE under the PCR-only policy; absent
otherwise, so the JSON stays exactly Talos'."""

from __future__ import annotations

from volumed.config import EncryptionSpec, encryption_from_meta_json, encryption_to_meta_json, load_config

PCR_ONLY = (
    b'{"EncryptionProvider":"luks2","EncryptionKeys":[{"KeySlot":0,"KeyStatic":null,"KeyNodeID":null,'
    b'"KeyKMS":null,"KeyTPM":{"TPMOptions":{"PCRs":[7],"VolumedPCROnly":true},'
    b'"TPMCheckSecurebootStatusOnEnroll":null},"KeyLockToSTATE":null}],"EncryptionCipher":"",'
    b'"EncryptionKeySize":0,"EncryptionBlockSize":0,"EncryptionPerfOptions":null}'
)
TALOS = PCR_ONLY.replace(b',"VolumedPCROnly":true', b"")


def state_encryption(tpm_options: str) -> EncryptionSpec:
    config = load_config(
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\nencryption:\n  provider: luks2\n"
        f"  keys:\n    - {{slot: 0, tpm: {{options: {tpm_options}}}}}\n"
    )
    document = config.volume("STATE")
    assert document is not None
    return document.encryption


def test_pcr_only_is_written_as_an_extra_field() -> None:
    assert encryption_to_meta_json(state_encryption("{pcrs: [7], volumedPcrOnly: true}")) == PCR_ONLY


def test_pcr_only_is_read_back() -> None:
    spec = encryption_from_meta_json(PCR_ONLY)
    assert spec is not None
    [key] = spec.keys
    assert key.tpm is not None
    assert (key.tpm.pcr_only, key.tpm.effective_pcrs) == (True, (7,))
    assert encryption_to_meta_json(spec) == PCR_ONLY


def test_talos_shape_without_the_extension() -> None:
    for options in ("{pcrs: [7]}", "{pcrs: [7], volumedPcrOnly: false}"):
        assert encryption_to_meta_json(state_encryption(options)) == TALOS, options
    spec = encryption_from_meta_json(TALOS)
    assert spec is not None
    [key] = spec.keys
    assert key.tpm is not None
    assert not key.tpm.pcr_only
    assert encryption_to_meta_json(spec) == TALOS


def test_field_name_is_read_as_go_reads_it() -> None:
    """Go's json.Unmarshal matches field names case-insensitively."""
    spec = encryption_from_meta_json(PCR_ONLY.replace(b"VolumedPCROnly", b"volumedPcrOnly"))
    assert spec is not None
    assert spec.keys[0].tpm is not None
    assert spec.keys[0].tpm.pcr_only

"""The TPM slot's provider built from its KeySlotSpec: Talos' signed policy by default, `pcrs: []` binds no
PCR value, the PCR-only extension and the UKI file paths come through."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.controllers.keys._providers import KeyEnvironment, _tpm_provider
from volumed.keys.tpm import TPMKeyProvider, pcr_policy, signed_pcr_policy
from volumed.resources import KeyKind, KeySlotSpec

if TYPE_CHECKING:
    from pathlib import Path


def provider(spec: KeySlotSpec, env: KeyEnvironment) -> TPMKeyProvider:
    built, reason = _tpm_provider(spec, env)
    assert reason == ""
    assert isinstance(built, TPMKeyProvider)
    return built


def test_default_is_talos_signed_policy() -> None:
    built = provider(
        KeySlotSpec(slot=0, kind=KeyKind.TPM, tpm_pcrs=(7,)), KeyEnvironment(tcti="swtpm:port=1")
    )
    assert built.options.policy == signed_pcr_policy([7])


def test_empty_pcr_list_binds_only_the_signed_pcr11() -> None:
    """`pcrs: []` became PCR 7 here (`tpm_pcrs or (7,)`); in Talos it binds no PCR value."""
    built = provider(KeySlotSpec(slot=0, kind=KeyKind.TPM, tpm_pcrs=()), KeyEnvironment(tcti="swtpm:port=1"))
    assert built.options.policy == signed_pcr_policy([])


def test_pcr_only_and_uki_paths_come_through(tmp_path: Path) -> None:
    env = KeyEnvironment(
        tcti="swtpm:port=1",
        tpm_pcr_public_key=str(tmp_path / "k.pem"),
        tpm_pcr_signature=str(tmp_path / "s.json"),
    )
    signed = provider(KeySlotSpec(slot=0, kind=KeyKind.TPM, tpm_pcrs=(7,)), env)
    assert (signed.options.pcr_public_key, signed.options.pcr_signature) == (
        tmp_path / "k.pem",
        tmp_path / "s.json",
    )
    pcr_only = provider(KeySlotSpec(slot=0, kind=KeyKind.TPM, tpm_pcrs=(7,), tpm_pcr_only=True), env)
    assert pcr_only.options.policy == pcr_policy([7])


def test_pcr_only_without_pcrs_is_the_keys_reason() -> None:
    built, reason = _tpm_provider(
        KeySlotSpec(slot=0, kind=KeyKind.TPM, tpm_pcrs=(), tpm_pcr_only=True),
        KeyEnvironment(tcti="swtpm:port=1"),
    )
    assert built is None
    assert "at least one PCR" in reason

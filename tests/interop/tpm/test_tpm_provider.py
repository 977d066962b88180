"""The TPM key provider against swtpm: seal/unseal, PCR changes, reboots, another TPM, refused PCRs."""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import structlog

from tests._swtpm import Swtpm
from tests.interop.tpm.conftest import FIRMWARE_PCR7_EVENT
from volumed.keys import (
    InvalidTokenError,
    KeyRejectedError,
    KeyUnavailableError,
    Passphrase,
    PolicyCheckError,
    token_to_json,
)
from volumed.keys.tpm import (
    PCRPolicyError,
    PCRValueError,
    SRKMismatchError,
    TPMCommandError,
    TPMKeyProvider,
    TPMUnavailableError,
    parse_tpm_token,
    pcr_policy,
    seal,
    unseal,
)

if TYPE_CHECKING:
    from pathlib import Path


def provider(tpm: Swtpm, slot: int = 1, **options: Any) -> TPMKeyProvider:
    return TPMKeyProvider(slot, tcti=tpm.tcti, pcr_only=True, **options)


async def test_seal_then_unseal_gives_the_same_passphrase(swtpm: Swtpm) -> None:
    tpm_key = provider(swtpm, slot=2)
    new = await tpm_key.new_key()

    assert new.token is not None
    assert len(new.passphrase) == 44
    raw = base64.b64decode(new.passphrase.reveal(), validate=True)
    assert len(raw) == 32
    assert await tpm_key.get_key(new.token) == new.passphrase


async def test_every_new_key_is_fresh(swtpm: Swtpm) -> None:
    tpm_key = provider(swtpm)
    first, second = await tpm_key.new_key(), await tpm_key.new_key()
    assert first.passphrase != second.passphrase
    assert first.token != second.token


async def test_token_survives_json_text_round_trip(swtpm: Swtpm) -> None:
    tpm_key = provider(swtpm, slot=3)
    new = await tpm_key.new_key()
    assert new.token is not None

    text = token_to_json(new.token)
    reloaded = json.loads(text)

    assert reloaded == new.token
    assert await tpm_key.get_key(reloaded) == new.passphrase
    user_data = reloaded["UserData"]
    assert user_data["pcrs"] == [7]
    assert user_data["pubkey_pcrs"] == []
    assert user_data["alg"] == "sha256"
    assert user_data["encryption_version"] == "1"
    assert user_data["keyslots"] == [3]
    assert reloaded["keyslots"] == []


async def test_pcr7_extended_then_unseal_fails_with_policy_error(swtpm: Swtpm) -> None:
    tpm_key = provider(swtpm, slot=4)
    new = await tpm_key.new_key()
    swtpm.pcr_extend(7, b"SecureBoot db updated")

    with pytest.raises(PCRPolicyError, match="PCR policy check failed") as caught:
        await tpm_key.get_key(new.token)

    assert isinstance(caught.value, PolicyCheckError)
    assert "slot 4" in str(caught.value)


async def test_reboot_resets_pcrs_and_unseal_works_again(swtpm: Swtpm) -> None:
    tpm_key = provider(swtpm)
    new = await tpm_key.new_key()
    swtpm.pcr_extend(7, b"something measured after boot")
    with pytest.raises(PCRPolicyError):
        await tpm_key.get_key(new.token)

    swtpm.reboot()
    swtpm.pcr_extend(7, FIRMWARE_PCR7_EVENT)

    assert await tpm_key.get_key(new.token) == new.passphrase


async def test_token_from_another_tpm_is_an_srk_name_mismatch(swtpm: Swtpm, other_swtpm: Swtpm) -> None:
    new = await provider(other_swtpm).new_key()

    with pytest.raises(SRKMismatchError, match="SRK name mismatch"):
        await provider(swtpm).get_key(new.token)
    assert await provider(other_swtpm).get_key(new.token) == new.passphrase


async def test_altered_key_name_is_an_srk_name_mismatch(swtpm: Swtpm) -> None:
    new = await provider(swtpm).new_key()
    assert new.token is not None
    name = base64.b64decode(new.token["UserData"]["key_name"])
    altered = name[:-1] + bytes([name[-1] ^ 1])
    new.token["UserData"]["key_name"] = base64.b64encode(altered).decode()

    with pytest.raises(SRKMismatchError):
        await provider(swtpm).get_key(new.token)


async def test_altered_policy_hash_is_rejected_before_the_tpm(swtpm: Swtpm) -> None:
    new = await provider(swtpm).new_key()
    assert new.token is not None
    new.token["UserData"]["policy_hash"] = base64.b64encode(bytes(32)).decode()

    with pytest.raises(InvalidTokenError, match="authPolicy"):
        await provider(swtpm).get_key(new.token)


async def test_altered_sealed_blob_is_refused_by_the_tpm(swtpm: Swtpm) -> None:
    new = await provider(swtpm).new_key()
    assert new.token is not None
    private = bytearray(base64.b64decode(new.token["UserData"]["sealed_blob_private"]))
    private[-1] ^= 0xFF
    new.token["UserData"]["sealed_blob_private"] = base64.b64encode(bytes(private)).decode()

    with pytest.raises(TPMCommandError, match="TPM2_Load"):
        await provider(swtpm).get_key(new.token)


async def test_all_zero_pcr_is_refused_at_enroll(swtpm: Swtpm) -> None:
    swtpm.reboot()  # fresh boot, nothing measured: PCR 7 is all zeros

    with pytest.raises(PCRValueError, match=r"PCR 7 .* all zeroes") as caught:
        await provider(swtpm).new_key()
    assert isinstance(caught.value, KeyRejectedError)


async def test_all_ff_pcr_is_refused_at_enroll(swtpm: Swtpm) -> None:
    # PCRs 17..22 (D-RTM) hold all 0xFF until a dynamic launch resets them.
    assert swtpm.pcr_read(17) == b"\xff" * 32
    with pytest.raises(PCRValueError, match=r"PCR 17 .* all 0xFF"):
        await provider(swtpm, pcrs=[7, 17]).new_key()


async def test_several_pcrs_are_bound_and_read_in_chunks(swtpm: Swtpm) -> None:
    pcrs = list(range(10))  # more than the 8 digests one TPM2_PCR_Read returns
    for pcr in pcrs:
        if pcr != 7:
            swtpm.pcr_extend(pcr, f"boot component {pcr}".encode())
    tpm_key = provider(swtpm, pcrs=pcrs)
    new = await tpm_key.new_key()
    assert new.token is not None
    assert new.token["UserData"]["pcrs"] == pcrs
    assert await tpm_key.get_key(new.token) == new.passphrase

    swtpm.pcr_extend(3, b"another option ROM")
    with pytest.raises(PCRPolicyError):
        await tpm_key.get_key(new.token)


async def test_concurrent_unseals_share_the_tpm_without_leaking_handles(swtpm: Swtpm) -> None:
    tpm_key = provider(swtpm)
    new = await tpm_key.new_key()
    results: list[Passphrase] = []

    async def one() -> None:
        results.append(await tpm_key.get_key(new.token))

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(one)

    assert results == [new.passphrase] * 8


async def test_secureboot_check_on_enroll_passes_with_secureboot_on(swtpm: Swtpm, tmp_path: Path) -> None:
    guid = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
    (tmp_path / f"SecureBoot-{guid}").write_bytes(b"\x06\x00\x00\x00\x01")
    (tmp_path / f"SetupMode-{guid}").write_bytes(b"\x06\x00\x00\x00\x00")
    tpm_key = provider(swtpm, check_secureboot_on_enroll=True, efivars_dir=tmp_path)

    new = await tpm_key.new_key()
    assert await tpm_key.get_key(new.token) == new.passphrase


async def test_no_tpm_when_swtpm_is_gone(tmp_path: Path) -> None:
    with Swtpm.start(tmp_path / "short-lived") as tpm:
        tpm.pcr_extend(7, FIRMWARE_PCR7_EVENT)
        tpm_key = provider(tpm)
        new = await tpm_key.new_key()

    with pytest.raises(TPMUnavailableError, match="no TPM") as caught:
        await tpm_key.get_key(new.token)
    assert isinstance(caught.value, KeyUnavailableError)


def test_offline_policy_digest_equals_the_tpm_trial_session(swtpm: Swtpm) -> None:
    from tpm2_pytss import ESYS_TR, TPM2_ALG, TPM2_SE, TPML_PCR_SELECTION, TPMT_SYM_DEF

    for pcr in (0, 4, 7, 14):
        swtpm.pcr_extend(pcr, f"measurement {pcr}".encode())
    for pcrs in ([7], [0, 7], [0, 4, 7, 14, 23]):
        values = {pcr: swtpm.pcr_read(pcr) for pcr in pcrs}
        with swtpm.esapi() as esapi:
            session = esapi.start_auth_session(
                ESYS_TR.NONE,
                ESYS_TR.NONE,
                TPM2_SE.TRIAL,
                TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL),
                TPM2_ALG.SHA256,
            )
            try:
                spec = "sha256:" + ",".join(str(p) for p in pcrs)
                esapi.policy_pcr(session, b"", TPML_PCR_SELECTION.parse(spec))
                from_tpm = bytes(esapi.policy_get_digest(session))
            finally:
                esapi.flush_context(session)
        assert pcr_policy(pcrs).digest(values) == from_tpm, pcrs


def test_blocking_api_round_trip(swtpm: Swtpm) -> None:
    sealed = seal(Passphrase(b"\x01" * 32), pcr_policy([7]), tcti=swtpm.tcti)
    assert unseal(sealed, tcti=swtpm.tcti) == Passphrase(b"\x01" * 32)
    assert "private=<" in repr(sealed)


def test_no_stack_frame_of_a_failure_holds_the_key(swtpm: Swtpm) -> None:
    """What a traceback renderer that shows locals (rich, structlog's dev console) would print."""
    known = b"S3CRET-KEY-MATERIAL-0123456789ab"
    swtpm.reboot()  # PCR 7 all zeros: seal fails after the key was handed over
    with pytest.raises(PCRValueError) as caught:
        seal(Passphrase(known), pcr_policy([7]), tcti=swtpm.tcti)

    traceback = caught.value.__traceback__.tb_next  # skip this test's own frame, which holds `known`
    frames = 0
    while traceback is not None:
        for name, value in traceback.tb_frame.f_locals.items():
            assert known.decode() not in repr(value), f"{traceback.tb_frame.f_code.co_name}: {name}"
        traceback, frames = traceback.tb_next, frames + 1
    assert frames >= 2


async def test_no_secret_in_logs_or_errors(
    swtpm: Swtpm, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    tpm_key = provider(swtpm, slot=5)
    errors: list[BaseException] = []
    with structlog.testing.capture_logs() as events:
        new = await tpm_key.new_key()
        assert await tpm_key.get_key(new.token) == new.passphrase
        swtpm.pcr_extend(7, b"changed")
        try:
            await tpm_key.get_key(new.token)
        except PCRPolicyError as exc:
            errors.append(exc)
    captured = capfd.readouterr()

    passphrase = new.passphrase.reveal()
    raw = base64.b64decode(passphrase)
    secrets_as_text = {passphrase.decode(), raw.hex(), raw.decode("latin-1")}
    haystack = "\n".join(
        [
            caplog.text,
            repr(events),
            captured.out,
            captured.err,
            repr(new),
            repr(tpm_key),
            *(f"{e!s} {e!r}" for e in errors),
            repr(parse_tpm_token(new.token, slot=5)),
        ]
    )
    assert errors, "the PCR change should have failed the unseal"
    assert [event["event"] for event in events].count("tpm.sealed") == 1
    for secret in secrets_as_text:
        assert secret not in haystack

"""Talos v1.12's signed PCR 11 (UKI) policy against swtpm, with artefacts made by the real systemd-measure.

The UKI is four small section files and a PCR-signing RSA key made with openssl; ``systemd-measure sign``
signs the PCR 11 policy of the phase path ``enter-initrd:leave-initrd:enter-machined``. The test measures PCR
11 as systemd-stub (each section's name with its NUL, then its content) and the phases would, checks the value
against ``systemd-measure calculate``, then seals and unseals with volumed and with an independent
implementation of Talos' policy in tpm2-tools, in both directions.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from tests._uki import UKI, make_uki, measure_uki_boot
from tests.interop.tpm.test_tpm2_tools import Tools
from volumed.keys.tpm import (
    START_THE_WORLD,
    TPM_TOKEN_TYPE,
    PCRValueError,
    TPMKeyProvider,
    UKIFileError,
    UKIPolicyError,
    measure_boot_phase,
    parse_pcr_public_key,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests._swtpm import Swtpm

pytestmark = pytest.mark.interop

KEY_ATTRIBUTES = "decrypt|sign|userwithauth"
TPM_CC_POLICY_AUTHORIZE = 0x16A


@pytest.fixture
def uki(swtpm: Swtpm, tmp_path: Path) -> UKI:
    """A PCR-signing key and the signature JSON for the three phases, made by openssl and systemd-measure."""
    return make_uki(tmp_path / "uki", swtpm)


def test_measurements_match_systemd_measure(swtpm: Swtpm, uki: UKI) -> None:
    measure_uki_boot(swtpm, uki)  # asserts PCR 11 == systemd-measure calculate


def test_volumed_seals_and_unseals_as_talos(swtpm: Swtpm, uki: UKI) -> None:
    measure_uki_boot(swtpm, uki)
    provider = uki.provider(swtpm)
    new = anyio.run(provider.new_key)
    assert new.token is not None
    user_data = new.token["UserData"]
    assert {
        key: user_data[key] for key in ("keyslots", "pcrs", "pubkey_pcrs", "alg", "encryption_version")
    } == {
        "keyslots": [1],
        "pcrs": [7],
        "pubkey_pcrs": [11],
        "alg": "sha256",
        "encryption_version": "1",
    }
    assert anyio.run(provider.get_key, new.token).reveal() == new.passphrase.reveal()


def test_after_start_the_world_unseal_fails_until_the_next_boot(swtpm: Swtpm, uki: UKI) -> None:
    measure_uki_boot(swtpm, uki)
    provider = uki.provider(swtpm)
    new = anyio.run(provider.new_key)
    measure_boot_phase(START_THE_WORLD, tcti=swtpm.tcti)
    with pytest.raises(UKIPolicyError, match=r"no signature in .*sig\.json for this PCR 11 value"):
        anyio.run(provider.get_key, new.token)

    swtpm.reboot()  # PCRs reset; the firmware and the UKI measure the same again
    swtpm.pcr_extend(7, b"firmware: SecureBoot=1 PK KEK db dbx")
    with pytest.raises(UKIPolicyError, match=r"PCR 11 .* all zeroes: no UKI was measured"):
        anyio.run(provider.get_key, new.token)
    measure_uki_boot(swtpm, uki)
    assert anyio.run(provider.get_key, new.token).reveal() == new.passphrase.reveal()


def test_seal_refuses_without_a_uki(swtpm: Swtpm, uki: UKI) -> None:
    with pytest.raises(PCRValueError, match="PCR bank 11 is populated with all zeroes: no UKI was measured"):
        anyio.run(uki.provider(swtpm).new_key)
    measure_uki_boot(swtpm, uki)
    missing = TPMKeyProvider(1, tcti=swtpm.tcti, pcr_public_key=uki.dir / "none.pem")
    with pytest.raises(UKIFileError, match=r"none\.pem is missing: the node did not boot a signed UKI"):
        anyio.run(missing.new_key)


def test_signature_of_another_key_is_named(swtpm: Swtpm, uki: UKI) -> None:
    measure_uki_boot(swtpm, uki)
    new = anyio.run(uki.provider(swtpm).new_key)
    document = json.loads(uki.signature.read_bytes())
    document["sha256"][0]["pkfp"] = "00" * 32
    uki.signature.write_text(json.dumps(document))
    with pytest.raises(UKIFileError, match="made with another key"):
        anyio.run(uki.provider(swtpm).get_key, new.token)


def _name_from_tpm(tools: Tools, uki: UKI) -> bytes:
    """The PCR-signing key's name as tpm2_loadexternal computes it (Talos' RSA template attributes)."""
    tools.run(
        "tpm2_loadexternal", "-C", "o", "-G", "rsa", "-u", str(uki.public_key), "-a", KEY_ATTRIBUTES,
        "-n", "key.name", "-c", "key.ctx",
    )  # fmt: skip
    tools.flush_transients()
    return (tools.workdir / "key.name").read_bytes()


def test_empty_pcr_list_is_policy_authorize_alone(swtpm: Swtpm, uki: UKI, tmp_path: Path) -> None:
    measure_uki_boot(swtpm, uki)
    new = anyio.run(uki.provider(swtpm, pcrs=()).new_key)
    assert new.token is not None
    assert "pcrs" not in new.token["UserData"]
    name = _name_from_tpm(Tools(swtpm, tmp_path), uki)
    assert name == parse_pcr_public_key(uki.public_key.read_bytes(), path=uki.public_key).name
    by_hand = hashlib.sha256(
        hashlib.sha256(
            bytes(32) + TPM_CC_POLICY_AUTHORIZE.to_bytes(4, "big") + name
        ).digest()  # policyRef empty
    ).digest()
    assert base64.b64decode(new.token["UserData"]["policy_hash"]) == by_hand
    assert anyio.run(uki.provider(swtpm, pcrs=()).get_key, new.token).reveal() == new.passphrase.reveal()


def _tools_seal(tools: Tools, uki: UKI, secret: bytes, pcr7: bool) -> dict[str, Any]:
    """Talos' sealing policy built with tpm2-tools in a trial session: PolicyAuthorize(key name), then
    PolicyPCR(sha256:7); the sealed object made by tpm2_create under the standard SRK."""
    srk_name = tools.create_srk()
    _name_from_tpm(tools, uki)
    (tools.workdir / "secret.bin").write_bytes(secret)
    (tools.workdir / "empty.pol").write_bytes(bytes(32))
    tools.run("tpm2_startauthsession", "-S", "trial.ctx")
    try:
        tools.run(
            "tpm2_policyauthorize", "-S", "trial.ctx", "-i", "empty.pol", "-n", "key.name", "-L", "policy.dat"
        )
        if pcr7:
            tools.run("tpm2_policypcr", "-S", "trial.ctx", "-l", "sha256:7", "-L", "policy.dat")
    finally:
        tools.run("tpm2_flushcontext", "trial.ctx")
    tools.run(
        "tpm2_create", "-C", "prim.ctx", "-g", "sha256", "-a", "fixedtpm|fixedparent|noda",
        "-L", "policy.dat", "-i", "secret.bin", "-u", "seal.pub", "-r", "seal.priv",
    )  # fmt: skip
    tools.flush_transients()

    def b64_file(name: str) -> str:
        return base64.b64encode((tools.workdir / name).read_bytes()).decode()

    return {
        "keyslots": [1],
        "sealed_blob_private": b64_file("seal.priv"),
        "sealed_blob_public": b64_file("seal.pub"),
        "pcrs": [7],
        "pubkey_pcrs": [11],
        "alg": "sha256",
        "encryption_version": "1",
        "policy_hash": b64_file("policy.dat"),
        "key_name": base64.b64encode(srk_name).decode(),
    }


def test_we_unseal_a_talos_shaped_token_sealed_by_tpm2_tools(swtpm: Swtpm, uki: UKI, tmp_path: Path) -> None:
    measure_uki_boot(swtpm, uki)
    secret = bytes(range(64, 96))
    user_data = _tools_seal(Tools(swtpm, tmp_path), uki, secret, pcr7=True)
    token = {"type": TPM_TOKEN_TYPE, "keyslots": [], "UserData": user_data}
    assert anyio.run(uki.provider(swtpm).get_key, token).reveal() == base64.b64encode(secret)


def test_pre_112_token_unseals(swtpm: Swtpm, uki: UKI, tmp_path: Path) -> None:
    """Talos < 1.12 recorded ``pcrs: [11]`` and no encryption_version/pubkey_pcrs, but sealed to PCR 7 too."""
    measure_uki_boot(swtpm, uki)
    secret = bytes(range(32))
    user_data = _tools_seal(Tools(swtpm, tmp_path), uki, secret, pcr7=True)
    user_data["pcrs"] = [11]
    del user_data["encryption_version"]
    del user_data["pubkey_pcrs"]
    token = {"type": TPM_TOKEN_TYPE, "keyslots": [], "UserData": user_data}
    assert anyio.run(uki.provider(swtpm).get_key, token).reveal() == base64.b64encode(secret)


def test_tpm2_tools_unseal_our_key_under_talos_policy(swtpm: Swtpm, uki: UKI, tmp_path: Path) -> None:
    measure_uki_boot(swtpm, uki)
    new = anyio.run(uki.provider(swtpm).new_key)
    assert new.token is not None
    user_data = new.token["UserData"]
    tools = Tools(swtpm, tmp_path)
    (tmp_path / "seal.pub").write_bytes(base64.b64decode(user_data["sealed_blob_public"]))
    (tmp_path / "seal.priv").write_bytes(base64.b64decode(user_data["sealed_blob_private"]))
    [entry] = json.loads(uki.signature.read_bytes())["sha256"]
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(entry["sig"]))
    assert tools.create_srk() == base64.b64decode(user_data["key_name"])
    tools.run("tpm2_load", "-C", "prim.ctx", "-u", "seal.pub", "-r", "seal.priv", "-c", "seal.ctx")
    tools.flush_transients()
    tools.run("tpm2_startauthsession", "--policy-session", "-S", "session.ctx")
    try:
        tools.run("tpm2_policypcr", "-S", "session.ctx", "-l", "sha256:11", "-L", "pcr11.pol")
        assert (tmp_path / "pcr11.pol").read_bytes().hex() == entry["pol"]
        tools.run(
            "tpm2_loadexternal", "-C", "o", "-G", "rsa", "-u", str(uki.public_key), "-a", KEY_ATTRIBUTES,
            "-n", "key.name", "-c", "key.ctx",
        )  # fmt: skip
        tools.run(
            "tpm2_verifysignature", "-c", "key.ctx", "-g", "sha256", "-m", "pcr11.pol", "-s", "sig.bin",
            "-f", "rsassa", "-t", "verified.tkt",
        )  # fmt: skip
        tools.run(
            "tpm2_policyauthorize",
            "-S",
            "session.ctx",
            "-i",
            "pcr11.pol",
            "-n",
            "key.name",
            "-t",
            "verified.tkt",
        )
        tools.run("tpm2_policypcr", "-S", "session.ctx", "-l", "sha256:7", "-L", "policy.dat")
        assert (tmp_path / "policy.dat").read_bytes() == base64.b64decode(user_data["policy_hash"])
        unsealed = tools.run("tpm2_unseal", "-c", "seal.ctx", "-p", "session:session.ctx")
    finally:
        tools.run("tpm2_flushcontext", "session.ctx")
        tools.flush_transients()
    assert base64.b64encode(unsealed) == new.passphrase.reveal()


def test_forged_signature_is_refused_by_the_tpm(swtpm: Swtpm, uki: UKI) -> None:
    measure_uki_boot(swtpm, uki)
    new = anyio.run(uki.provider(swtpm).new_key)
    document = json.loads(uki.signature.read_bytes())
    signature = bytearray(base64.b64decode(document["sha256"][0]["sig"]))
    signature[-1] ^= 1
    document["sha256"][0]["sig"] = base64.b64encode(bytes(signature)).decode()
    uki.signature.write_text(json.dumps(document))
    with pytest.raises(
        UKIPolicyError, match=r"sig\.json for this PCR 11 value does not verify with .*pub\.pem"
    ):
        anyio.run(uki.provider(swtpm).get_key, new.token)

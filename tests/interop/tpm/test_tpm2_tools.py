"""Our sealed objects and tpm2-tools' are interchangeable: same SRK (name), same blob format, same policy."""

from __future__ import annotations

import base64
import subprocess
from typing import TYPE_CHECKING, Any

import anyio

from tests._tools import require_tool
from volumed.keys.tpm import ENCRYPTION_VERSION, TPM_TOKEN_TYPE, TPMKeyProvider

if TYPE_CHECKING:
    from pathlib import Path

    from tests._swtpm import Swtpm

SRK_ATTRIBUTES = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"
# The standard ECC SRK template's unique field: X and Y of 32 zero bytes each. tpm2-tools 5.4 reads `-u` as
# the C struct TPMU_PUBLIC_ID in memory: per coordinate a native-endian (x86: little) UINT16 size and a
# MAX_ECC_KEY_BYTES (128) buffer, not the big-endian TPM marshalling its man page describes.
SRK_UNIQUE = ((32).to_bytes(2, "little") + bytes(128)) * 2


class Tools:
    """tpm2-tools against one swtpm, flushing transient objects after each step (no resource manager)."""

    def __init__(self, tpm: Swtpm, workdir: Path) -> None:
        self.tpm = tpm
        self.workdir = workdir

    def run(self, tool: str, *args: str) -> bytes:
        result = subprocess.run(
            [require_tool(tool), "-T", self.tpm.tcti, *args],
            cwd=self.workdir,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, f"{tool} {' '.join(args)}: {result.stderr.decode(errors='replace')}"
        return result.stdout

    def flush_transients(self) -> None:
        self.run("tpm2_flushcontext", "-t")

    def flush_loaded_sessions(self) -> None:
        self.run("tpm2_flushcontext", "-l")

    def create_srk(self) -> bytes:
        """The standard ECC SRK as prim.ctx; returns its name as a marshalled TPM2B_NAME."""
        (self.workdir / "unique.bin").write_bytes(SRK_UNIQUE)
        self.run(
            "tpm2_createprimary",
            "-C", "o",
            "-g", "sha256",
            "-G", "ecc256:aes128cfb",
            "-a", SRK_ATTRIBUTES,
            "-u", "unique.bin",
            "-c", "prim.ctx",
        )  # fmt: skip
        self.run("tpm2_readpublic", "-c", "prim.ctx", "-n", "srk.name")
        self.flush_transients()
        name = (self.workdir / "srk.name").read_bytes()
        return len(name).to_bytes(2, "big") + name


def test_tpm2_tools_unseal_our_sealed_key(swtpm: Swtpm, tmp_path: Path) -> None:

    tpm_key = TPMKeyProvider(1, tcti=swtpm.tcti, pcr_only=True)
    new = anyio.run(tpm_key.new_key)
    assert new.token is not None
    user_data: dict[str, Any] = new.token["UserData"]
    (tmp_path / "seal.pub").write_bytes(base64.b64decode(user_data["sealed_blob_public"]))
    (tmp_path / "seal.priv").write_bytes(base64.b64decode(user_data["sealed_blob_private"]))
    tools = Tools(swtpm, tmp_path)

    assert tools.create_srk() == base64.b64decode(user_data["key_name"])
    tools.run("tpm2_load", "-C", "prim.ctx", "-u", "seal.pub", "-r", "seal.priv", "-c", "seal.ctx")
    tools.flush_transients()
    tools.run("tpm2_startauthsession", "--policy-session", "-S", "session.ctx")
    try:
        digest = tools.run("tpm2_policypcr", "-S", "session.ctx", "-l", "sha256:7", "-L", "policy.dat")
        assert (tmp_path / "policy.dat").read_bytes() == base64.b64decode(user_data["policy_hash"]), digest
        unsealed = tools.run("tpm2_unseal", "-c", "seal.ctx", "-p", "session:session.ctx")
    finally:
        tools.run("tpm2_flushcontext", "session.ctx")
        tools.flush_transients()

    assert base64.b64encode(unsealed) == new.passphrase.reveal()


def test_we_unseal_a_key_sealed_by_tpm2_tools(swtpm: Swtpm, tmp_path: Path) -> None:

    secret = bytes(range(100, 132))
    (tmp_path / "secret.bin").write_bytes(secret)
    tools = Tools(swtpm, tmp_path)
    srk_name = tools.create_srk()
    tools.run("tpm2_createpolicy", "--policy-pcr", "-l", "sha256:7", "-L", "policy.dat")
    tools.flush_loaded_sessions()  # tpm2_createpolicy leaves its trial session loaded
    tools.run(
        "tpm2_create",
        "-C", "prim.ctx",
        "-g", "sha256",
        "-a", "fixedtpm|fixedparent|noda",
        "-L", "policy.dat",
        "-i", "secret.bin",
        "-u", "seal.pub",
        "-r", "seal.priv",
    )  # fmt: skip
    tools.flush_transients()

    def b64_file(name: str) -> str:
        return base64.b64encode((tmp_path / name).read_bytes()).decode()

    token = {
        "type": TPM_TOKEN_TYPE,
        "keyslots": [],
        "UserData": {
            "keyslots": [1],
            "sealed_blob_private": b64_file("seal.priv"),
            "sealed_blob_public": b64_file("seal.pub"),
            "pcrs": [7],
            "pubkey_pcrs": None,
            "alg": "sha256",
            "encryption_version": ENCRYPTION_VERSION,
            "policy_hash": b64_file("policy.dat"),
            "key_name": base64.b64encode(srk_name).decode(),
        },
    }

    passphrase = anyio.run(TPMKeyProvider(1, tcti=swtpm.tcti, pcr_only=True).get_key, token)

    assert passphrase.reveal() == base64.b64encode(secret)

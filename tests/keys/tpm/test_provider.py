"""The TPM key provider without a TPM: options, the "no TPM" error, checks that run before the TPM."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import anyio
import pytest

from volumed.keys import (
    InvalidTokenError,
    KeyProvider,
    KeyTimeoutError,
    KeyUnavailableError,
    Passphrase,
    with_time_limit,
)
from volumed.keys.tpm import (
    DEFAULT_TCTI,
    SecureBootError,
    TPMConnection,
    TPMKeyProvider,
    TPMOptions,
    TPMUnavailableError,
    check_tcti,
    pcr_policy,
    seal,
)


def closed_port_tcti() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"swtpm:host=127.0.0.1,port={port}"


def test_defaults_are_talos() -> None:
    provider = TPMKeyProvider(0)
    assert provider.slot == 0
    assert provider.kind == "tpm"
    assert provider.options == TPMOptions(pcrs=(7,), tcti="device:/dev/tpmrm0")
    assert DEFAULT_TCTI == "device:/dev/tpmrm0"
    assert provider.options.pcr_public_key == Path("/.extra/tpm2-pcr-public-key.pem")
    assert provider.options.pcr_signature == Path("/.extra/tpm2-pcr-signature.json")
    assert provider.options.policy.pubkey_pcrs == (11,)  # Talos' signed PCR 11 policy unless pcr_only
    assert (
        repr(provider) == "TPMKeyProvider(slot=0, pcrs=[7], policy=signed-pcr11, tcti='device:/dev/tpmrm0')"
    )


def test_empty_pcrs_bind_only_the_signed_pcr11() -> None:
    policy = TPMKeyProvider(0, pcrs=[]).options.policy
    assert (policy.pcrs, policy.pubkey_pcrs) == ((), (11,))


def test_pcr_only_is_policy_pcr_alone() -> None:
    policy = TPMKeyProvider(0, pcrs=[7], pcr_only=True).options.policy
    assert policy == pcr_policy([7])


def test_provider_satisfies_the_protocol() -> None:
    provider: KeyProvider = TPMKeyProvider(1)
    assert with_time_limit(provider).kind == "tpm"


def test_provider_class_is_final() -> None:
    assert getattr(TPMKeyProvider, "__final__", False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pcrs": [], "pcr_only": True}, "tpm key pcrs: at least one PCR"),
        ({"pcrs": [7, 24]}, "tpm key pcrs: PCR 24 is out of range"),
        ({"tcti": ""}, "is not a TCTI string"),
        ({"tcti": "/dev/tpmrm0"}, "is not a TCTI string"),
    ],
)
def test_bad_options_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TPMKeyProvider(1, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("tcti", ["", " ", "/dev/tpmrm0", ":/dev/tpmrm0", " device:/dev/tpmrm0"])
def test_check_tcti_refuses_what_is_not_name_colon_config(tcti: str) -> None:
    with pytest.raises(ValueError, match=r"is not a TCTI string like 'device:/dev/tpmrm0'"):
        check_tcti(tcti)


@pytest.mark.parametrize("tcti", [DEFAULT_TCTI, "swtpm:host=127.0.0.1,port=2321", "tabrmd:"])
def test_check_tcti_takes_tcti_strings(tcti: str) -> None:
    assert check_tcti(tcti) == tcti


@pytest.mark.parametrize("slot", [-1, 32, True])
def test_bad_slot_is_named(slot: int) -> None:
    with pytest.raises(ValueError, match=r"slot must be an integer 0\.\.31"):
        TPMKeyProvider(slot)


async def test_no_tpm_is_a_clear_unavailable_error() -> None:
    tcti = closed_port_tcti()
    with pytest.raises(TPMUnavailableError, match=r"tpm key for slot 3: no TPM: cannot open TCTI") as caught:
        await TPMKeyProvider(3, tcti=tcti).new_key()
    assert isinstance(caught.value, KeyUnavailableError)
    assert tcti in str(caught.value)


def test_no_tpm_from_the_blocking_api() -> None:
    with pytest.raises(TPMUnavailableError, match="no TPM"):
        seal(Passphrase(b"\x00" * 32), pcr_policy([7]), tcti=closed_port_tcti())


def test_missing_device_is_no_tpm() -> None:
    with pytest.raises(TPMUnavailableError, match="device:/nonexistent/tpmrm0"):
        seal(Passphrase(b"\x00" * 32), pcr_policy([7]), tcti="device:/nonexistent/tpmrm0")


async def test_bad_token_is_refused_before_the_tpm() -> None:
    with pytest.raises(InvalidTokenError, match="slot 1: no LUKS2 token"):
        await TPMKeyProvider(1, tcti=closed_port_tcti()).get_key(None)


async def test_secureboot_is_checked_before_the_tpm(tmp_path: Path) -> None:
    provider = TPMKeyProvider(
        1, tcti=closed_port_tcti(), check_secureboot_on_enroll=True, efivars_dir=tmp_path
    )
    with pytest.raises(SecureBootError, match="tpm key for slot 1: failed to enroll the TPM2 key"):
        await provider.new_key()


class SilentTPM:
    """Accepts TCP connections on the swtpm command and control ports and never answers: a hung TPM."""

    def __init__(self) -> None:
        from tests._swtpm import _free_port_pair

        self.port = _free_port_pair()
        self.servers = [socket.create_server(("127.0.0.1", p)) for p in (self.port, self.port + 1)]
        self.connections: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, args=(s,), daemon=True) for s in self.servers]
        for thread in self.threads:
            thread.start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        for resource in [*self.connections, *self.servers]:
            with contextlib.suppress(OSError):
                resource.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() and the TCTI's recv()
            resource.close()
        for thread in self.threads:
            thread.join(timeout=5)


async def test_hung_tpm_is_cut_off_by_the_time_limit() -> None:
    silent = SilentTPM()
    provider = TPMKeyProvider(1, tcti=f"swtpm:host=127.0.0.1,port={silent.port}")
    try:
        with pytest.raises(
            KeyTimeoutError, match=r"tpm key for slot 1: making a new key took longer than 0\.3 s"
        ):
            await with_time_limit(provider, 0.3).new_key()
    finally:
        silent.close()
    # the abandoned worker sees the connection close, fails, and releases the TCTI: the next call is prompt
    with anyio.fail_after(10), pytest.raises(TPMUnavailableError):
        await provider.new_key()


def sealed_token(*, private: bytes, public: bytes, policy_hash: bytes) -> dict[str, object]:
    import base64

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "type": "talos-tpm2",
        "keyslots": [],
        "UserData": {
            "keyslots": [1],
            "sealed_blob_private": b64(private),
            "sealed_blob_public": b64(public),
            "pcrs": [7],
            "pubkey_pcrs": [],
            "alg": "sha256",
            "encryption_version": "1",
            "policy_hash": b64(policy_hash),
            "key_name": b64(b"\x00\x22\x00\x0b" + bytes(32)),
        },
    }


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        ("private", "sealed_blob_private is not a TPM2B_PRIVATE"),
        ("public", "sealed_blob_public is not a TPM2B_PUBLIC"),
        ("trailing", "sealed_blob_private has trailing bytes"),
        ("attributes", "userWithAuth clear"),
        ("policy", "authPolicy differs from the token's policy_hash"),
    ],
)
async def test_edited_blobs_are_refused_before_the_tpm(blob: str, message: str) -> None:
    from tpm2_pytss import TPMA_OBJECT

    from volumed.keys.tpm._templates import sealed_object_template

    digest = b"\x42" * 32
    public = sealed_object_template(digest)
    if blob == "attributes":
        public.publicArea.objectAttributes |= TPMA_OBJECT.USERWITHAUTH
    private = b"\x00\x04abcd"
    token = sealed_token(
        private={"private": b"\x00", "trailing": private + b"!"}.get(blob, private),
        public=b"\x00\x50" if blob == "public" else bytes(public.marshal()),
        policy_hash=b"\x43" * 32 if blob == "policy" else digest,
    )
    with pytest.raises(InvalidTokenError, match=message):
        await TPMKeyProvider(1, tcti=closed_port_tcti()).get_key(token)


def test_waiters_behind_a_hung_tpm_give_up() -> None:
    silent = SilentTPM()
    tcti = f"swtpm:host=127.0.0.1,port={silent.port}"
    hung_errors: list[BaseException] = []

    def hang() -> None:
        try:
            with TPMConnection(tcti) as tpm:
                tpm.read_pcrs((7,))
        except TPMUnavailableError as exc:  # once the silent TPM closes the connection
            hung_errors.append(exc)

    worker = threading.Thread(target=hang)
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while len(silent.connections) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(TPMUnavailableError, match=r"TPM busy: an earlier operation on TCTI .* 0\.2 s"):
            TPMConnection(tcti, lock_timeout=0.2).__enter__()
    finally:
        silent.close()
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert hung_errors


def token_with(**fields: object) -> dict[str, object]:
    token = sealed_token(private=b"\x00\x02ab", public=b"\x00\x02cd", policy_hash=bytes(32))
    user_data = token["UserData"]
    assert isinstance(user_data, dict)
    for name, value in fields.items():
        if value is None:
            del user_data[name]
        else:
            user_data[name] = value
    return token


@pytest.mark.parametrize(
    ("provider_options", "fields", "matches"),
    [
        ({"pcrs": [7]}, {"pubkey_pcrs": [11]}, True),  # Talos 1.12 token, default config
        ({"pcrs": [7]}, {"pubkey_pcrs": None, "encryption_version": None, "pcrs": [11]}, True),  # pre-1.12
        ({"pcrs": [7]}, {}, False),  # a PCR-only token under the signed default: sealed again
        ({"pcrs": [7], "pcr_only": True}, {}, True),
        ({"pcrs": [7], "pcr_only": True}, {"pubkey_pcrs": [11]}, False),
        ({"pcrs": [0, 7]}, {"pubkey_pcrs": [11]}, False),
        ({"pcrs": []}, {"pubkey_pcrs": [11], "pcrs": None}, True),
    ],
)
def test_token_matches_compares_pcrs_and_policy_kind(
    provider_options: dict[str, object], fields: dict[str, object], matches: bool
) -> None:
    provider = TPMKeyProvider(1, **provider_options)  # type: ignore[arg-type]
    assert provider.token_matches(token_with(**fields)) is matches

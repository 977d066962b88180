"""One TPM connection per operation: an ESAPI context that flushes every transient handle it created.

Neither swtpm's socket nor a raw ``/dev/tpm0`` has a resource manager, so a handle left behind occupies one of
the TPM's three or so object slots until reboot. ESAPI contexts are not thread-safe, and swtpm serves one
client at a time, so operations on the same TCTI are serialised by a process-wide lock.
"""

from __future__ import annotations

import struct
import threading
from typing import TYPE_CHECKING, Any, Self, final

import structlog
from tpm2_pytss import (
    ESAPI,
    ESYS_TR,
    TPM2_ALG,
    TPM2_RC,
    TPM2_SE,
    TPM2B_PRIVATE,
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE_CREATE,
    TPM2B_SENSITIVE_DATA,
    TPMA_SESSION,
    TPML_DIGEST_VALUES,
    TPML_PCR_SELECTION,
    TPMS_SENSITIVE_CREATE,
    TPMT_HA,
    TPMT_SIGNATURE,
    TPMU_HA,
    TSS2_Exception,
)

from .._secret import Passphrase
from .._tcti import DEFAULT_TCTI as DEFAULT_TCTI
from .._tcti import check_tcti as check_tcti
from ._errors import PCRPolicyError, PCRValueError, TPMCommandError, TPMUnavailableError
from ._pcr import PCR_BANK, TPM_ALG_SHA256, pcr_selection_bytes
from ._templates import aes128_cfb, sealed_object_template, srk_template

if TYPE_CHECKING:
    from types import TracebackType

LOCK_TIMEOUT = 30.0
"""Seconds a TPM operation waits for an earlier one on the same TCTI. Bounded, so that worker threads behind a
hung TPM end on their own instead of piling up (each caller is already cut off by its time limit)."""

_log = structlog.get_logger(__name__)

_TSS2_LAYER_MASK = 0xFF0000
_TSS2_TCTI_LAYER = 10 << 16
_POLICY_FAILURES = frozenset({int(TPM2_RC.POLICY_FAIL), int(TPM2_RC.PCR_CHANGED)})

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(tcti: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(tcti, threading.Lock())


@final
class TPMConnection:
    """A context manager around one ESAPI context on ``tcti``; each method is one TPM command (blocking).

    Every handle a method returns is flushed when the ``with`` block ends, whatever happened inside it.
    TPM errors become :class:`TPMUnavailableError` (transport), :class:`PCRPolicyError` (policy) or
    :class:`TPMCommandError` (anything else); messages name the command and never include data.
    """

    __slots__ = ("_esapi", "_handles", "_lock", "_lock_timeout", "_tcti")

    def __init__(self, tcti: str, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self._tcti = tcti
        self._lock = _lock_for(tcti)
        self._lock_timeout = lock_timeout
        self._esapi: Any = None
        self._handles: list[Any] = []

    @property
    def tcti(self) -> str:
        """The TCTI configuration string this connection opened."""
        return self._tcti

    def __enter__(self) -> Self:
        if not self._lock.acquire(timeout=self._lock_timeout):
            raise TPMUnavailableError(
                f"TPM busy: an earlier operation on TCTI {self._tcti!r} has not finished after "
                f"{self._lock_timeout:g} s (a hung TPM?)"
            )
        try:
            self._esapi = ESAPI(self._tcti)
        except TSS2_Exception as exc:
            self._lock.release()
            raise TPMUnavailableError(f"no TPM: cannot open TCTI {self._tcti!r}: {exc}") from None
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            for handle in reversed(self._handles):
                try:
                    self._esapi.flush_context(handle)
                except TSS2_Exception as flush_error:
                    _log.warning("tpm.flush_failed", tcti=self._tcti, error=str(flush_error))
            self._handles.clear()
            self._esapi.close()
        finally:
            self._esapi = None
            self._lock.release()

    def _call(self, command: str, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._esapi is None:
            raise RuntimeError("TPMConnection used outside its with block")
        try:
            return getattr(self._esapi, method)(*args, **kwargs)
        except TSS2_Exception as exc:
            raise _translate(command, exc) from None

    def _track(self, handle: Any) -> Any:
        self._handles.append(handle)
        return handle

    def read_pcrs(self, pcrs: tuple[int, ...]) -> dict[int, bytes]:
        """TPM2_PCR_Read of ``pcrs`` in the SHA-256 bank (several reads when more than 8 are asked).

        Raises:
            PCRValueError: the TPM has no SHA-256 value for one of them.
        """
        values: dict[int, bytes] = {}
        remaining = list(pcrs)
        while remaining:
            selection = TPML_PCR_SELECTION.unmarshal(pcr_selection_bytes(remaining))[0]
            _, selection_out, digests = self._call("TPM2_PCR_Read", "pcr_read", selection)
            read = _selected_pcrs(selection_out.marshal())
            if not read:
                raise PCRValueError(f"the TPM has no {PCR_BANK} bank for PCRs {remaining}")
            for pcr, digest in zip(read, digests, strict=True):
                values[pcr] = bytes(digest)
            still_missing = [pcr for pcr in remaining if pcr not in values]
            if len(still_missing) == len(remaining):
                raise PCRValueError(f"the TPM returned no {PCR_BANK} values for PCRs {remaining}")
            remaining = still_missing
        return values

    def create_srk(self) -> tuple[Any, bytes]:
        """TPM2_CreatePrimary of the standard SRK under the owner hierarchy; returns its handle and its name
        as a marshalled ``TPM2B_NAME`` (how Talos' tokens store ``key_name``)."""
        handle = self._track(
            self._call("TPM2_CreatePrimary", "create_primary", None, srk_template(), ESYS_TR.OWNER)[0]
        )
        name = self._call("Esys_TR_GetName", "tr_get_name", handle)
        return handle, bytes(name.marshal())

    def start_session(self, salt_key: Any, *, policy: bool) -> Any:
        """TPM2_StartAuthSession salted with ``salt_key`` (the SRK), AES-128-CFB, SHA-256: an HMAC session for
        parameter encryption of commands, or a policy session. Both keep secrets off the TPM bus."""
        kind = TPM2_SE.POLICY if policy else TPM2_SE.HMAC
        session = self._track(
            self._call(
                "TPM2_StartAuthSession",
                "start_auth_session",
                salt_key,
                ESYS_TR.NONE,
                kind,
                aes128_cfb(),
                TPM_ALG_SHA256,
            )
        )
        return session

    def _session_attributes(self, session: Any, attributes: int) -> None:
        self._call("session attributes", "trsess_set_attributes", session, attributes)

    def create_sealed(
        self, parent: Any, session: Any, data: Passphrase, auth_policy: bytes
    ) -> tuple[bytes, bytes]:
        """TPM2_Create of a sealed data object holding ``data`` under ``parent``, the sensitive part encrypted
        on the way in by ``session``; returns the marshalled ``TPM2B_PRIVATE`` and ``TPM2B_PUBLIC``."""
        self._session_attributes(session, TPMA_SESSION.CONTINUESESSION | TPMA_SESSION.DECRYPT)
        sensitive = TPM2B_SENSITIVE_CREATE(
            sensitive=TPMS_SENSITIVE_CREATE(data=TPM2B_SENSITIVE_DATA(data.reveal()))
        )
        private, public, *_ = self._call(
            "TPM2_Create",
            "create",
            parent,
            sensitive,
            sealed_object_template(auth_policy),
            session1=session,
        )
        return bytes(private.marshal()), bytes(public.marshal())

    def load(self, parent: Any, private: bytes, public: bytes) -> Any:
        """TPM2_Load of a sealed object (marshalled ``TPM2B_PRIVATE``/``TPM2B_PUBLIC``) under ``parent``."""
        in_private = TPM2B_PRIVATE.unmarshal(private)[0]
        in_public = TPM2B_PUBLIC.unmarshal(public)[0]
        return self._track(self._call("TPM2_Load", "load", parent, in_private, in_public))

    def policy_pcr(self, session: object, pcrs: tuple[int, ...]) -> None:
        """TPM2_PolicyPCR over the current SHA-256 values of ``pcrs`` (the TPM reads them itself)."""
        selection = TPML_PCR_SELECTION.unmarshal(pcr_selection_bytes(pcrs))[0]
        self._call("TPM2_PolicyPCR", "policy_pcr", session, b"", selection)

    def load_external_public(self, public: bytes) -> tuple[Any, bytes]:
        """TPM2_LoadExternal of a public key alone (marshalled ``TPM2B_PUBLIC``) under the owner hierarchy, so
        that its signature checks give tickets PolicyAuthorize accepts; returns its handle and TPM name."""
        try:
            in_public = TPM2B_PUBLIC.unmarshal(public)[0]
        except (TSS2_Exception, ValueError, IndexError):
            raise TPMCommandError(
                "TPM2_LoadExternal: the public key is not a TPM2B_PUBLIC a TPM takes"
            ) from None
        handle = self._track(self._call("TPM2_LoadExternal", "load_external", in_public, None, ESYS_TR.OWNER))
        name = self._call("Esys_TR_GetName", "tr_get_name", handle)
        return handle, bytes(name.name)

    def verify_signature(self, key: Any, digest: bytes, signature: bytes) -> Any:
        """TPM2_VerifySignature of an RSASSA-SHA256 ``signature`` over ``digest`` (already hashed) with
        ``key``; returns the ``TPMT_TK_VERIFIED`` ticket."""
        sig = TPMT_SIGNATURE(sigAlg=TPM2_ALG.RSASSA)
        sig.signature.rsassa.hash = TPM2_ALG.SHA256
        try:
            sig.signature.rsassa.sig = signature
        except (TSS2_Exception, ValueError, IndexError):
            raise TPMCommandError(
                f"TPM2_VerifySignature: a {len(signature)}-byte signature is larger than a TPM takes"
            ) from None
        return self._call("TPM2_VerifySignature", "verify_signature", key, digest, sig)

    def policy_authorize(self, session: Any, approved: bytes, key_name: bytes, ticket: Any) -> None:
        """TPM2_PolicyAuthorize: replace the session's digest (which must be ``approved``) by the authorized
        policy of ``key_name``, on the strength of ``ticket``."""
        self._call("TPM2_PolicyAuthorize", "policy_authorize", session, approved, key_name, ticket)

    def pcr_extend(self, pcr: int, digest: bytes) -> None:
        """TPM2_PCR_Extend of ``pcr``'s SHA-256 bank with ``digest`` (other banks are left alone)."""
        values = TPML_DIGEST_VALUES([TPMT_HA(hashAlg=TPM2_ALG.SHA256, digest=TPMU_HA(sha256=digest))])
        self._call("TPM2_PCR_Extend", "pcr_extend", ESYS_TR.parse(f"pcr{pcr}"), values)

    def policy_digest(self, session: Any) -> bytes:
        """TPM2_PolicyGetDigest: the policy digest the session holds now."""
        return bytes(self._call("TPM2_PolicyGetDigest", "policy_get_digest", session))

    def unseal(self, item: Any, session: Any) -> Passphrase:
        """TPM2_Unseal of ``item`` authorised by the policy ``session``, the reply encrypted by that
        session."""
        self._session_attributes(session, TPMA_SESSION.CONTINUESESSION | TPMA_SESSION.ENCRYPT)
        return Passphrase(bytes(self._call("TPM2_Unseal", "unseal", item, session1=session)))


def _selected_pcrs(selection: bytes) -> list[int]:
    """PCR indices of the SHA-256 selections in a marshalled ``TPML_PCR_SELECTION``, in the order the TPM
    returns their digests."""
    (count,) = struct.unpack_from(">I", selection, 0)
    offset = 4
    pcrs: list[int] = []
    for _ in range(count):
        alg, size = struct.unpack_from(">HB", selection, offset)
        offset += 3
        bitmap = selection[offset : offset + size]
        offset += size
        if alg != TPM_ALG_SHA256:
            continue
        pcrs.extend(i for i in range(size * 8) if bitmap[i >> 3] & (1 << (i & 7)))
    return pcrs


def _translate(command: str, exc: TSS2_Exception) -> Exception:
    rc = int(exc.rc)
    if rc & _TSS2_LAYER_MASK == _TSS2_TCTI_LAYER:
        return TPMUnavailableError(f"no TPM: the connection failed during {command}: {exc}")
    if rc & _TSS2_LAYER_MASK == 0 and int(exc.error) in _POLICY_FAILURES:
        return PCRPolicyError(f"PCR policy check failed: the TPM refused {command} ({exc})")
    if rc & _TSS2_LAYER_MASK == 0 and int(exc.error) == int(TPM2_RC.LOCKOUT):
        return TPMCommandError(
            f"{command} failed: the TPM is in dictionary-attack lockout ({exc}); "
            "clear it with `tpm2_dictionarylockout -c` or wait"
        )
    return TPMCommandError(f"{command} failed: {exc}")

"""The ``tpm`` key kind: a random key sealed by the node's TPM (under Talos' signed PCR 11 policy, or to PCR
values alone), in a ``talos-tpm2`` token."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar, final

from .._errors import KeyProviderError
from .._provider import KeyKind, NewKey
from .._secret import Passphrase
from ._connection import DEFAULT_TCTI, check_tcti
from ._daemon_thread import run_in_daemon_thread
from ._pcr import normalize_pcrs
from ._policy import SealingPolicy, pcr_policy, signed_pcr_policy
from ._sealing import seal, unseal
from ._secureboot import DEFAULT_EFIVARS_DIR, check_secureboot
from ._token import make_tpm_token, parse_tpm_token
from ._uki import DEFAULT_PCR_PUBLIC_KEY, DEFAULT_PCR_SIGNATURE, UKIFiles

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

KEY_SIZE: Final = 32
"""Random bytes per sealed key; the passphrase is their standard base64 (44 ASCII bytes), as in Talos."""

DEFAULT_PCRS: Final = (7,)
"""PCR 7, the SecureBoot state (Talos' default)."""

_T = TypeVar("_T")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class TPMOptions:
    """How a TPM key is sealed and where the TPM is.

    Attributes:
        pcrs: PCRs (SHA-256 bank) the key is bound to by value, each 0..23; may be empty under the signed
            policy (then only the signed PCR 11 binds it), at least one with ``pcr_only``.
        tcti: TCTI configuration string, e.g. ``device:/dev/tpmrm0`` or ``swtpm:port=2321``.
        check_secureboot_on_enroll: refuse to make a new key unless SecureBoot is on and not in setup mode.
        efivars_dir: where the UEFI variables are read from (efivarfs; a plain folder in tests).
        pcr_public_key: the UKI's PCR-signing public key (PEM), read at seal and unseal.
        pcr_signature: the UKI's PCR signatures (systemd's JSON), read at unseal.
        pcr_only: volumed extension: seal under PolicyPCR(``pcrs``) alone, for machines that boot without a
            signed UKI (Talos cannot unseal such keys). False: Talos v1.12's signed PCR 11 policy.
    """

    pcrs: tuple[int, ...] = DEFAULT_PCRS
    tcti: str = DEFAULT_TCTI
    check_secureboot_on_enroll: bool = False
    efivars_dir: Path = field(default=DEFAULT_EFIVARS_DIR)
    pcr_public_key: Path = field(default=DEFAULT_PCR_PUBLIC_KEY)
    pcr_signature: Path = field(default=DEFAULT_PCR_SIGNATURE)
    pcr_only: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "pcrs", normalize_pcrs(self.pcrs, what="tpm key pcrs", allow_empty=not self.pcr_only)
        )
        try:
            check_tcti(self.tcti)
        except ValueError as error:
            raise ValueError(f"tpm key tcti {error}") from None

    @property
    def uki_files(self) -> UKIFiles:
        """Where the signed PCR 11 policy's files are read from."""
        return UKIFiles(public_key=self.pcr_public_key, signature=self.pcr_signature)

    @property
    def policy(self) -> SealingPolicy:
        """The policy new keys are sealed under."""
        if self.pcr_only:
            return pcr_policy(self.pcrs)
        return signed_pcr_policy(self.pcrs, self.uki_files)


@final
class TPMKeyProvider:
    """The key of one slot, sealed by the TPM (see :class:`~volumed.keys.KeyProvider` for the contract).

    ``new_key`` makes 32 random bytes, seals them to the SRK under Talos' signed PCR 11 policy (or PolicyPCR
    alone with ``pcr_only``) and returns their base64 as the passphrase with a ``talos-tpm2`` token.
    ``get_key`` unseals the token's blob under the token's own policy; it fails with :class:`PCRPolicyError`
    ("PCR policy check failed") when the PCRs changed, :class:`UKIPolicyError` when the UKI's signatures do
    not cover PCR 11's value, :class:`UKIFileError` when a UKI file is missing or malformed,
    :class:`SRKMismatchError` when the token comes from another TPM, :class:`TPMUnavailableError` when there
    is no TPM.

    TPM commands run in a daemon thread, one TPM connection per call (never shared with a later call). On
    cancellation the caller returns at once; the thread finishes its commands and flushes its handles on its
    own, and being a daemon it never holds up process exit behind a hung TPM.
    """

    __slots__ = ("_options", "_slot")

    def __init__(
        self,
        slot: int,
        *,
        pcrs: Sequence[int] = DEFAULT_PCRS,
        tcti: str = DEFAULT_TCTI,
        check_secureboot_on_enroll: bool = False,
        efivars_dir: Path = DEFAULT_EFIVARS_DIR,
        pcr_public_key: Path = DEFAULT_PCR_PUBLIC_KEY,
        pcr_signature: Path = DEFAULT_PCR_SIGNATURE,
        pcr_only: bool = False,
    ) -> None:
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < 32:
            raise ValueError(f"tpm key slot must be an integer 0..31, got {slot!r}")
        self._slot = slot
        self._options = TPMOptions(
            pcrs=tuple(pcrs),
            tcti=tcti,
            check_secureboot_on_enroll=check_secureboot_on_enroll,
            efivars_dir=efivars_dir,
            pcr_public_key=pcr_public_key,
            pcr_signature=pcr_signature,
            pcr_only=pcr_only,
        )

    @property
    def slot(self) -> int:
        return self._slot

    @property
    def kind(self) -> KeyKind:
        return "tpm"

    @property
    def options(self) -> TPMOptions:
        """The sealing options."""
        return self._options

    async def new_key(self) -> NewKey:
        options = self._options
        if options.check_secureboot_on_enroll:
            await self._in_thread(check_secureboot, options.efivars_dir)
        key = Passphrase(secrets.token_bytes(KEY_SIZE))  # wrapped at once: never a bare local in a traceback
        sealed = await self._in_thread(_seal, key, options.policy, options.tcti)
        return NewKey(passphrase=_passphrase(key), token=make_tpm_token(sealed, slot=self._slot))

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        sealed = parse_tpm_token(token, slot=self._slot, files=self._options.uki_files)
        key = await self._in_thread(_unseal, sealed, self._options.tcti)
        return _passphrase(key)

    def token_matches(self, token: Mapping[str, Any] | None) -> bool:
        """Whether a slot's token was sealed with this key's PCR list and policy kind (signed or PCR-only).
        False: the config changed them, so the slot must be sealed again; the old key still unseals under its
        own policy. A pre-1.12 Talos token counts as bound to PCR 7 under the signed policy."""
        try:
            sealed = parse_tpm_token(token, slot=self._slot, files=self._options.uki_files)
        except KeyProviderError:
            return True  # a damaged token: get_key says what is wrong with it
        wanted = self._options.policy
        return (sealed.policy.pcrs, sealed.policy.pubkey_pcrs) == (wanted.pcrs, wanted.pubkey_pcrs)

    async def _in_thread(self, func: Callable[..., _T], *args: Any) -> _T:
        try:
            return await run_in_daemon_thread(func, *args, name=f"volumed-tpm-slot-{self._slot}")
        except KeyProviderError as exc:
            raise type(exc)(f"tpm key for slot {self._slot}: {exc}") from None

    def __repr__(self) -> str:
        policy = "pcr-only" if self._options.pcr_only else "signed-pcr11"
        return (
            f"TPMKeyProvider(slot={self._slot}, pcrs={list(self._options.pcrs)}, policy={policy}, "
            f"tcti={self._options.tcti!r})"
        )


def _seal(key: Passphrase, policy: SealingPolicy, tcti: str) -> Any:
    return seal(key, policy, tcti=tcti)


def _unseal(sealed: Any, tcti: str) -> Passphrase:
    return unseal(sealed, tcti=tcti)


def _passphrase(key: Passphrase) -> Passphrase:
    return Passphrase(base64.b64encode(key.reveal()))

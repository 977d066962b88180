"""The TPM 2.0 key provider (``tpm`` key kind): keys sealed under Talos' signed PCR 11 (UKI) policy, or to
PCRs alone (volumed extension), with tpm2-pytss; ``talos-tpm2`` tokens."""

from . import _requires as _requires  # first: a missing extra is named before it is needed
from ._connection import DEFAULT_TCTI as DEFAULT_TCTI
from ._connection import TPMConnection as TPMConnection
from ._connection import check_tcti as check_tcti
from ._daemon_thread import run_in_daemon_thread as run_in_daemon_thread
from ._errors import PCRPolicyError as PCRPolicyError
from ._errors import PCRValueError as PCRValueError
from ._errors import SecureBootError as SecureBootError
from ._errors import SRKMismatchError as SRKMismatchError
from ._errors import TPMCommandError as TPMCommandError
from ._errors import TPMUnavailableError as TPMUnavailableError
from ._errors import UKIFileError as UKIFileError
from ._errors import UKIPolicyError as UKIPolicyError
from ._errors import UnsupportedPolicyError as UnsupportedPolicyError
from ._pcr import PCR_BANK as PCR_BANK
from ._pcr import check_pcr_values as check_pcr_values
from ._pcr import normalize_pcrs as normalize_pcrs
from ._phases import ENTER_MACHINED as ENTER_MACHINED
from ._phases import START_THE_WORLD as START_THE_WORLD
from ._phases import SignedPhaseCheck as SignedPhaseCheck
from ._phases import boot_phase_digest as boot_phase_digest
from ._phases import enter_signed_phase as enter_signed_phase
from ._phases import leave_signed_phase as leave_signed_phase
from ._phases import measure_boot_phase as measure_boot_phase
from ._phases import pcr11_is_signed as pcr11_is_signed
from ._phases import pcr_after_phase as pcr_after_phase
from ._policy import PCRPolicyStep as PCRPolicyStep
from ._policy import PolicyStep as PolicyStep
from ._policy import SealingPolicy as SealingPolicy
from ._policy import SignedPCRPolicyStep as SignedPCRPolicyStep
from ._policy import pcr_policy as pcr_policy
from ._policy import policy_authorize_digest as policy_authorize_digest
from ._policy import signed_pcr_policy as signed_pcr_policy
from ._provider import DEFAULT_PCRS as DEFAULT_PCRS
from ._provider import KEY_SIZE as KEY_SIZE
from ._provider import TPMKeyProvider as TPMKeyProvider
from ._provider import TPMOptions as TPMOptions
from ._sealing import SealedKey as SealedKey
from ._sealing import seal as seal
from ._sealing import unseal as unseal
from ._secureboot import DEFAULT_EFIVARS_DIR as DEFAULT_EFIVARS_DIR
from ._secureboot import check_secureboot as check_secureboot
from ._templates import srk_template as srk_template
from ._token import ENCRYPTION_VERSION as ENCRYPTION_VERSION
from ._token import TPM_TOKEN_TYPE as TPM_TOKEN_TYPE
from ._token import make_tpm_token as make_tpm_token
from ._token import parse_tpm_token as parse_tpm_token
from ._uki import DEFAULT_PCR_PUBLIC_KEY as DEFAULT_PCR_PUBLIC_KEY
from ._uki import DEFAULT_PCR_SIGNATURE as DEFAULT_PCR_SIGNATURE
from ._uki import UKI_PCR as UKI_PCR
from ._uki import PCRSignature as PCRSignature
from ._uki import PCRSigningKey as PCRSigningKey
from ._uki import UKIFiles as UKIFiles
from ._uki import parse_pcr_public_key as parse_pcr_public_key
from ._uki import parse_pcr_signatures as parse_pcr_signatures

__all__ = [
    "DEFAULT_EFIVARS_DIR",
    "DEFAULT_PCRS",
    "DEFAULT_PCR_PUBLIC_KEY",
    "DEFAULT_PCR_SIGNATURE",
    "DEFAULT_TCTI",
    "ENCRYPTION_VERSION",
    "ENTER_MACHINED",
    "KEY_SIZE",
    "PCR_BANK",
    "START_THE_WORLD",
    "TPM_TOKEN_TYPE",
    "UKI_PCR",
    "PCRPolicyError",
    "PCRPolicyStep",
    "PCRSignature",
    "PCRSigningKey",
    "PCRValueError",
    "PolicyStep",
    "SRKMismatchError",
    "SealedKey",
    "SealingPolicy",
    "SecureBootError",
    "SignedPCRPolicyStep",
    "SignedPhaseCheck",
    "TPMCommandError",
    "TPMConnection",
    "TPMKeyProvider",
    "TPMOptions",
    "TPMUnavailableError",
    "UKIFileError",
    "UKIFiles",
    "UKIPolicyError",
    "UnsupportedPolicyError",
    "boot_phase_digest",
    "check_pcr_values",
    "check_secureboot",
    "check_tcti",
    "enter_signed_phase",
    "leave_signed_phase",
    "make_tpm_token",
    "measure_boot_phase",
    "normalize_pcrs",
    "parse_pcr_public_key",
    "parse_pcr_signatures",
    "parse_tpm_token",
    "pcr11_is_signed",
    "pcr_after_phase",
    "pcr_policy",
    "policy_authorize_digest",
    "run_in_daemon_thread",
    "seal",
    "signed_pcr_policy",
    "srk_template",
    "unseal",
]

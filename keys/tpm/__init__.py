"""The TPM 2.0 key provider (``tpm`` key kind): keys sealed to PCRs with tpm2-pytss, ``talos-tpm2`` tokens."""

from ._connection import DEFAULT_TCTI as DEFAULT_TCTI
from ._connection import TPMConnection as TPMConnection
from ._connection import check_tcti as check_tcti
from ._errors import PCRPolicyError as PCRPolicyError
from ._errors import PCRValueError as PCRValueError
from ._errors import SecureBootError as SecureBootError
from ._errors import SRKMismatchError as SRKMismatchError
from ._errors import TPMCommandError as TPMCommandError
from ._errors import TPMUnavailableError as TPMUnavailableError
from ._errors import UnsupportedPolicyError as UnsupportedPolicyError
from ._pcr import PCR_BANK as PCR_BANK
from ._pcr import check_pcr_values as check_pcr_values
from ._pcr import normalize_pcrs as normalize_pcrs
from ._policy import PCRPolicyStep as PCRPolicyStep
from ._policy import PolicyStep as PolicyStep
from ._policy import SealingPolicy as SealingPolicy
from ._policy import pcr_policy as pcr_policy
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

__all__ = [
    "DEFAULT_EFIVARS_DIR",
    "DEFAULT_PCRS",
    "DEFAULT_TCTI",
    "ENCRYPTION_VERSION",
    "KEY_SIZE",
    "PCR_BANK",
    "TPM_TOKEN_TYPE",
    "PCRPolicyError",
    "PCRPolicyStep",
    "PCRValueError",
    "PolicyStep",
    "SRKMismatchError",
    "SealedKey",
    "SealingPolicy",
    "SecureBootError",
    "TPMCommandError",
    "TPMConnection",
    "TPMKeyProvider",
    "TPMOptions",
    "TPMUnavailableError",
    "UnsupportedPolicyError",
    "check_pcr_values",
    "check_secureboot",
    "check_tcti",
    "make_tpm_token",
    "normalize_pcrs",
    "parse_tpm_token",
    "pcr_policy",
    "seal",
    "srk_template",
    "unseal",
]

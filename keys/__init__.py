"""Key providers (static, nodeID, lockToSTATE, KMS, TPM) and the KMS server. No runtime.

Every key kind implements :class:`KeyProvider` for one LUKS2 slot. The KMS client and server live in
``volumed.keys.kms``, the TPM provider in ``volumed.keys.tpm`` (both import heavier libraries).
"""

from ._errors import EntropyCheckError as EntropyCheckError
from ._errors import InvalidTokenError as InvalidTokenError
from ._errors import KeyProviderError as KeyProviderError
from ._errors import KeyRejectedError as KeyRejectedError
from ._errors import KeyTimeoutError as KeyTimeoutError
from ._errors import KeyUnavailableError as KeyUnavailableError
from ._errors import PolicyCheckError as PolicyCheckError
from ._errors import SaltFileError as SaltFileError
from ._extras import MissingExtraError as MissingExtraError
from ._gate import GateClosedError as GateClosedError
from ._gate import GatedKeyProvider as GatedKeyProvider
from ._gate import KeyGate as KeyGate
from ._lock_to_state import LockedToStateKeyProvider as LockedToStateKeyProvider
from ._lock_to_state import salted as salted
from ._nodeid import NodeIDKeyProvider as NodeIDKeyProvider
from ._nodeid import check_uuid_entropy as check_uuid_entropy
from ._nodeid import node_id_passphrase as node_id_passphrase
from ._provider import KeyKind as KeyKind
from ._provider import KeyProvider as KeyProvider
from ._provider import NewKey as NewKey
from ._provider import TokenJSON as TokenJSON
from ._salt import SALT_FILE_NAME as SALT_FILE_NAME
from ._salt import SALT_SIZE as SALT_SIZE
from ._salt import DiskSalt as DiskSalt
from ._salt import decode_salt_file as decode_salt_file
from ._salt import encode_salt_file as encode_salt_file
from ._salt import load_or_create_salt as load_or_create_salt
from ._salt import load_or_create_salt_sync as load_or_create_salt_sync
from ._salt import read_salt as read_salt
from ._salt import read_salt_sync as read_salt_sync
from ._secret import Passphrase as Passphrase
from ._static import StaticKeyProvider as StaticKeyProvider
from ._tcti import check_tcti as check_tcti
from ._time_limit import DEFAULT_TIME_LIMIT as DEFAULT_TIME_LIMIT
from ._time_limit import TimeLimitedKeyProvider as TimeLimitedKeyProvider
from ._time_limit import with_time_limit as with_time_limit
from ._tokens import KMS_TOKEN_TYPE as KMS_TOKEN_TYPE
from ._tokens import make_kms_token as make_kms_token
from ._tokens import make_token as make_token
from ._tokens import parse_kms_token as parse_kms_token
from ._tokens import token_bytes_field as token_bytes_field
from ._tokens import token_to_json as token_to_json
from ._tokens import token_user_data as token_user_data

__all__ = [
    "DEFAULT_TIME_LIMIT",
    "KMS_TOKEN_TYPE",
    "SALT_FILE_NAME",
    "SALT_SIZE",
    "DiskSalt",
    "EntropyCheckError",
    "GateClosedError",
    "GatedKeyProvider",
    "InvalidTokenError",
    "KeyGate",
    "KeyKind",
    "KeyProvider",
    "KeyProviderError",
    "KeyRejectedError",
    "KeyTimeoutError",
    "KeyUnavailableError",
    "LockedToStateKeyProvider",
    "MissingExtraError",
    "NewKey",
    "NodeIDKeyProvider",
    "Passphrase",
    "PolicyCheckError",
    "SaltFileError",
    "StaticKeyProvider",
    "TimeLimitedKeyProvider",
    "TokenJSON",
    "check_tcti",
    "check_uuid_entropy",
    "decode_salt_file",
    "encode_salt_file",
    "load_or_create_salt",
    "load_or_create_salt_sync",
    "make_kms_token",
    "make_token",
    "node_id_passphrase",
    "parse_kms_token",
    "read_salt",
    "read_salt_sync",
    "salted",
    "token_bytes_field",
    "token_to_json",
    "token_user_data",
    "with_time_limit",
]

"""The network KMS: Talos' ``sidero.kms.KMSService`` client (the kms key kind) and server.

The client side is :class:`KMSKeyProvider` (a :class:`~volumed.keys.KeyProvider`) over :class:`KMSClient`;
the server side is :class:`KMSServer` with a master key ring kept in a file (:func:`load_master_key_file`).
"""

from . import _requires as _requires  # first: a missing extra is named before it is needed
from ._client import CALL_TIMEOUT as CALL_TIMEOUT
from ._client import KMSClient as KMSClient
from ._client import KMSClientTLS as KMSClientTLS
from ._endpoint import KMSEndpoint as KMSEndpoint
from ._master_keys import MASTER_KEY_SIZE as MASTER_KEY_SIZE
from ._master_keys import MasterKey as MasterKey
from ._master_keys import MasterKeyFileError as MasterKeyFileError
from ._master_keys import MasterKeyRing as MasterKeyRing
from ._master_keys import decode_master_key_file as decode_master_key_file
from ._master_keys import encode_master_key_file as encode_master_key_file
from ._master_keys import load_master_key_file as load_master_key_file
from ._master_keys import save_master_key_file as save_master_key_file
from ._provider import KEY_SIZE as KEY_SIZE
from ._provider import KMSKeyProvider as KMSKeyProvider
from ._sealing import BlobAuthenticationError as BlobAuthenticationError
from ._sealing import BlobFormatError as BlobFormatError
from ._sealing import UnknownMasterKeyError as UnknownMasterKeyError
from ._sealing import blob_key_id as blob_key_id
from ._sealing import seal_blob as seal_blob
from ._sealing import unseal_blob as unseal_blob
from ._serve import serve_kms as serve_kms
from ._server import AUDIT_LOGGER_NAME as AUDIT_LOGGER_NAME
from ._server import SEAL_DATA_SIZE as SEAL_DATA_SIZE
from ._server import KMSServer as KMSServer
from ._server import KMSServerTLS as KMSServerTLS
from ._server import KMSService as KMSService
from ._tls import KMSTLSError as KMSTLSError
from ._tls import check_server_tls as check_server_tls

__all__ = [
    "AUDIT_LOGGER_NAME",
    "CALL_TIMEOUT",
    "KEY_SIZE",
    "MASTER_KEY_SIZE",
    "SEAL_DATA_SIZE",
    "BlobAuthenticationError",
    "BlobFormatError",
    "KMSClient",
    "KMSClientTLS",
    "KMSEndpoint",
    "KMSKeyProvider",
    "KMSServer",
    "KMSServerTLS",
    "KMSService",
    "KMSTLSError",
    "MasterKey",
    "MasterKeyFileError",
    "MasterKeyRing",
    "UnknownMasterKeyError",
    "blob_key_id",
    "check_server_tls",
    "decode_master_key_file",
    "encode_master_key_file",
    "load_master_key_file",
    "save_master_key_file",
    "seal_blob",
    "serve_kms",
    "unseal_blob",
]

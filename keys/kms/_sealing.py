"""How the KMS server seals: AES-256-GCM under a master key, the node UUID as associated data.

Blob layout (version 1)::

    offset 0        1 byte    format version, 0x01
    offset 1        1 byte    N = length of the master key id (1..64)
    offset 2        N bytes   master key id, ASCII
    offset 2+N      12 bytes  GCM nonce, random per blob
    offset 14+N     rest      ciphertext || 16-byte GCM tag (48 bytes for a 32-byte key)

Associated data = the node UUID as UTF-8, so a blob unseals only for the node it was sealed for. Talos'
reference server stores ``nonce || ciphertext`` with no prefix; the prefix here names the master key so that
keys can be rotated.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from ._master_keys import MasterKeyRing

BLOB_VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16


class BlobFormatError(ValueError):
    """The blob is not a version-1 blob of this server (truncated, other format, bad header)."""


class UnknownMasterKeyError(LookupError):
    """The blob names a master key the server does not have (removed from the file, or another server's)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"sealed with master key {key_id!r}, which this server does not have")
        self.key_id = key_id


class BlobAuthenticationError(ValueError):
    """The blob fails authentication: sealed for another node UUID, or altered."""


def seal_blob(ring: MasterKeyRing, node_uuid: str, data: bytes, *, nonce: bytes | None = None) -> bytes:
    """Seal ``data`` for ``node_uuid`` under the ring's primary key.

    Args:
        nonce: a fixed nonce, for test vectors only; never pass one in production.
    """
    key = ring.primary
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    key_id = key.key_id.encode("ascii")
    ciphertext = AESGCM(key.key).encrypt(nonce, data, node_uuid.encode("utf-8"))
    return bytes([BLOB_VERSION, len(key_id)]) + key_id + nonce + ciphertext


def blob_key_id(blob: bytes) -> str:
    """The master key id named in a blob's header.

    Raises:
        BlobFormatError: the header is malformed.
    """
    if len(blob) < 2 or blob[0] != BLOB_VERSION:
        raise BlobFormatError("sealed data is not a version-1 blob of this server")
    size = blob[1]
    if size == 0 or len(blob) < 2 + size + NONCE_SIZE + TAG_SIZE:
        raise BlobFormatError("sealed data is truncated")
    try:
        return blob[2 : 2 + size].decode("ascii")
    except UnicodeDecodeError:
        raise BlobFormatError("sealed data has a malformed master key id") from None


def unseal_blob(ring: MasterKeyRing, node_uuid: str, blob: bytes) -> bytes:
    """Recover the data of a blob sealed for ``node_uuid`` by any key of the ring.

    Raises:
        BlobFormatError: malformed blob.
        UnknownMasterKeyError: the blob's master key is not in the ring.
        BlobAuthenticationError: wrong node UUID or altered blob.
    """
    key_id = blob_key_id(blob)
    try:
        key = ring.get(key_id)
    except KeyError:
        raise UnknownMasterKeyError(key_id) from None
    offset = 2 + len(key_id)
    nonce, ciphertext = blob[offset : offset + NONCE_SIZE], blob[offset + NONCE_SIZE :]
    try:
        return AESGCM(key.key).decrypt(nonce, ciphertext, node_uuid.encode("utf-8"))
    except InvalidTag:
        raise BlobAuthenticationError("sealed data does not belong to this node or was altered") from None

"""The KMS server's master key file: several AES-256 keys with ids, one of them primary.

Format (YAML, mode 0600)::

    # volumed KMS master keys: keep secret, back up, never delete a key that sealed blobs still use
    version: 1
    primary: k2
    keys:
      - id: k1
        created: "2026-11-27T18:00:00Z"
        key: "<standard base64 of 32 random bytes>"
      - id: k2
        created: "2026-12-27T18:00:00Z"
        key: "..."

Seal always uses the primary key; Unseal picks the key named in the blob, so rotating (adding a key and
making it primary) keeps every old blob readable.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

import yaml

MASTER_KEY_SIZE = 32
"""Bytes per master key (AES-256)."""

FILE_VERSION = 1

_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class MasterKeyFileError(Exception):
    """The master key file is missing, unreadable or invalid; the message names the file and the problem and
    never a key."""


@final
@dataclass(frozen=True, slots=True)
class MasterKey:
    """One master key; its bytes never show in a repr."""

    key_id: str
    key: bytes = field(repr=False)
    created: str = ""

    def __post_init__(self) -> None:
        if not _KEY_ID.fullmatch(self.key_id):
            raise ValueError(f"master key id {self.key_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
        if len(self.key) != MASTER_KEY_SIZE:
            raise ValueError(
                f"master key {self.key_id!r} is {len(self.key)} bytes, expected {MASTER_KEY_SIZE}"
            )

    @classmethod
    def generate(cls, key_id: str | None = None) -> MasterKey:
        """A fresh key; the default id is the UTC creation time (``k20261127T180000Z``) plus 4 random hex."""
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        if key_id is None:
            key_id = f"k{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
        return cls(key_id, secrets.token_bytes(MASTER_KEY_SIZE), now.isoformat().replace("+00:00", "Z"))


@final
@dataclass(frozen=True, slots=True)
class MasterKeyRing:
    """All master keys of a server and which one seals new blobs."""

    keys: tuple[MasterKey, ...]
    primary_id: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a master key ring needs at least one key")
        ids = [key.key_id for key in self.keys]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate master key ids: {', '.join(duplicates)}")
        if self.primary_id not in ids:
            raise ValueError(f"primary master key {self.primary_id!r} is not among the keys")

    @property
    def primary(self) -> MasterKey:
        """The key that seals new blobs."""
        return self.get(self.primary_id)

    def get(self, key_id: str) -> MasterKey:
        """Return the key with that id. Raises KeyError (the builtin) when there is none."""
        for key in self.keys:
            if key.key_id == key_id:
                return key
        raise KeyError(key_id)

    def rotated(self, new_key: MasterKey | None = None) -> MasterKeyRing:
        """A ring with ``new_key`` (default: a fresh one) added and made primary; old keys stay for Unseal."""
        new_key = new_key or MasterKey.generate()
        return MasterKeyRing((*self.keys, new_key), new_key.key_id)

    @classmethod
    def generate(cls) -> MasterKeyRing:
        """A ring of one fresh key."""
        key = MasterKey.generate()
        return cls((key,), key.key_id)


def encode_master_key_file(ring: MasterKeyRing) -> bytes:
    """The YAML text of a master key file (see the module docstring)."""
    document = {
        "version": FILE_VERSION,
        "primary": ring.primary_id,
        "keys": [
            {"id": k.key_id, "created": k.created, "key": base64.b64encode(k.key).decode("ascii")}
            for k in ring.keys
        ],
    }
    header = (
        "# volumed KMS master keys: keep secret, back up, never delete a key that sealed blobs still use.\n"
        "# Rotate: `volumed kms keygen --rotate --key-file FILE`, then SIGHUP `volumed kms serve`.\n"
    )
    return (header + yaml.safe_dump(document, sort_keys=False)).encode("utf-8")


def decode_master_key_file(data: bytes, *, path: str) -> MasterKeyRing:
    """Parse a master key file.

    Raises:
        MasterKeyFileError: naming ``path`` and the problem (never a key's bytes).
    """
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError:
        raise MasterKeyFileError(f"master key file {path}: not valid YAML") from None
    if not isinstance(document, dict):
        raise MasterKeyFileError(f"master key file {path}: expected a mapping with version, primary, keys")
    if document.get("version") != FILE_VERSION:
        raise MasterKeyFileError(
            f"master key file {path}: unsupported version {document.get('version')!r} "
            f"(expected {FILE_VERSION})"
        )
    entries = document.get("keys")
    if not isinstance(entries, list) or not entries:
        raise MasterKeyFileError(f"master key file {path}: 'keys' must be a non-empty list")
    keys = [_decode_entry(entry, index, path) for index, entry in enumerate(entries)]
    primary = document.get("primary")
    if not isinstance(primary, str):
        raise MasterKeyFileError(f"master key file {path}: 'primary' must name a key id")
    try:
        return MasterKeyRing(tuple(keys), primary)
    except ValueError as exc:
        raise MasterKeyFileError(f"master key file {path}: {exc}") from None


def _decode_entry(entry: Any, index: int, path: str) -> MasterKey:
    where = f"master key file {path}: keys[{index}]"
    if not isinstance(entry, dict):
        raise MasterKeyFileError(f"{where}: expected a mapping with id, key")
    key_id, encoded, created = entry.get("id"), entry.get("key"), entry.get("created", "")
    if not isinstance(key_id, str):
        raise MasterKeyFileError(f"{where}: 'id' must be a string")
    if not isinstance(encoded, str):
        raise MasterKeyFileError(f"{where} ({key_id}): 'key' must be a base64 string")
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise MasterKeyFileError(f"{where} ({key_id}): 'key' is not valid base64") from None
    try:
        return MasterKey(key_id, raw, str(created))
    except ValueError as exc:
        raise MasterKeyFileError(f"{where}: {exc}") from None


def load_master_key_file(path: str | os.PathLike[str]) -> MasterKeyRing:
    """Read and parse a master key file. Blocking.

    Like ssh with an unprotected private key, a file that group or others may read or write is refused
    (whoever reads it can unseal every node's keys): ``keygen`` writes it 0600. So is a file owned by another
    user than this one or root (its owner can read it and swap the keys whatever its mode).

    Raises:
        MasterKeyFileError: the file cannot be read, is another user's, group or others may access it, or it
            is invalid.
    """
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            user = os.geteuid()
            if st.st_uid not in (0, user):
                raise MasterKeyFileError(
                    f"master key file {path}: owned by uid {st.st_uid}, not by this user (uid {user}) "
                    "or root: its owner could read the keys or replace them"
                )
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077:
                raise MasterKeyFileError(
                    f"master key file {path}: permissions {mode:04o} are too open: it must not be readable "
                    f"or writable by group or others (chmod 600 {path})"
                )
            data = f.read()
    except OSError as exc:
        raise MasterKeyFileError(f"master key file {path}: cannot read: {exc.strerror}") from None
    return decode_master_key_file(data, path=str(path))


def save_master_key_file(path: str | os.PathLike[str], ring: MasterKeyRing, *, exclusive: bool) -> None:
    """Write a master key file atomically with mode 0600. Blocking.

    Args:
        exclusive: refuse to replace an existing file (creating a first key ring).

    Raises:
        MasterKeyFileError: the file exists (with ``exclusive``) or cannot be written.
    """
    target = Path(path)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, encode_master_key_file(ring))
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(temp, target)  # fails when the target exists
        else:
            os.replace(temp, target)
    except FileExistsError:
        raise MasterKeyFileError(
            f"master key file {path} already exists (use rotation to add a key)"
        ) from None
    except OSError as exc:
        raise MasterKeyFileError(f"master key file {path}: cannot write: {exc.strerror}") from None
    finally:
        # Gone after the rename, never made when the folder cannot be written (EROFS, EACCES): either way
        # the write's own error, if any, is the one to report.
        with contextlib.suppress(OSError):
            temp.unlink()

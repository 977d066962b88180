"""The lockToSTATE salt: 32 random bytes kept in ``encryption-salt.yaml`` at the root of the mounted STATE.

The file is Talos' (``diskSalt:`` as a YAML list of ints, mode 0600), so a disk locked by Talos opens here
and the other way round. It is created once and never rewritten: losing it (wiping STATE) makes every locked
volume unopenable, which is the point of lockToSTATE.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import final

import anyio

from ._bounded_read import read_bounded
from ._errors import SaltFileError

SALT_FILE_NAME = "encryption-salt.yaml"
"""The salt file's name at the root of the mounted STATE volume."""

SALT_SIZE = 32
"""Bytes of salt, as Talos generates."""

_TEMP_NAME = ".encryption-salt.yaml.tmp"


@final
class DiskSalt:
    """The lockToSTATE salt; like :class:`~volumed.keys.Passphrase` its value never shows in a repr or str."""

    __slots__ = ("_value",)
    __hash__ = None  # type: ignore[assignment]

    _value: bytes

    def __init__(self, value: bytes) -> None:
        if len(value) != SALT_SIZE:
            raise ValueError(f"a disk salt is {SALT_SIZE} bytes, got {len(value)}")
        object.__setattr__(self, "_value", bytes(value))

    @classmethod
    def generate(cls) -> DiskSalt:
        """A fresh salt from the OS CSPRNG."""
        return cls(secrets.token_bytes(SALT_SIZE))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("DiskSalt is immutable")

    def reveal(self) -> bytes:
        """Return the salt bytes, for the one call that appends them to a passphrase."""
        return self._value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DiskSalt):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __repr__(self) -> str:
        return "DiskSalt(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a DiskSalt is not picklable (it would copy key material)")


def encode_salt_file(salt: DiskSalt) -> bytes:
    """The file content: ``diskSalt:`` then one ``- <int>`` line per byte, as Go's yaml.v3 lays it out."""
    lines = ["diskSalt:"] + [f"    - {byte}" for byte in salt.reveal()]
    return ("\n".join(lines) + "\n").encode("ascii")


def decode_salt_file(data: bytes, *, path: str = SALT_FILE_NAME) -> DiskSalt:
    """Parse a salt file; accepts any YAML spelling of a list of 32 ints in 0..255 (or a ``!!binary`` value).

    Raises:
        SaltFileError: naming the file and what is wrong with it, never the salt's bytes.
    """
    import yaml  # on first use: PyYAML is ~6 % of `import volumed.controllers`

    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SaltFileError(f"salt file {path}: not valid YAML{where}") from None
    if not isinstance(document, dict) or "diskSalt" not in document:
        raise SaltFileError(f"salt file {path}: expected a mapping with a 'diskSalt' key")
    value = document["diskSalt"]
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, list) and all(type(v) is int and 0 <= v <= 255 for v in value):
        raw = bytes(value)
    else:
        raise SaltFileError(f"salt file {path}: 'diskSalt' must be a list of integers 0..255")
    if len(raw) != SALT_SIZE:
        raise SaltFileError(f"salt file {path}: 'diskSalt' has {len(raw)} bytes, expected {SALT_SIZE}")
    return DiskSalt(raw)


def read_salt_sync(state_root: str | os.PathLike[str]) -> DiskSalt | None:
    """Read the salt from a mounted STATE; ``None`` when there is no salt file yet. Blocking.

    Raises:
        SaltFileError: the file exists but is not a regular file, cannot be read or is not a valid salt.
    """
    path = Path(state_root) / SALT_FILE_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SaltFileError(f"salt file {path}: cannot open: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SaltFileError(f"salt file {path}: not a regular file")
        data = read_bounded(fd, limit=64 * 1024)
    except OSError as exc:
        raise SaltFileError(f"salt file {path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    return decode_salt_file(data, path=str(path))


def load_or_create_salt_sync(state_root: str | os.PathLike[str]) -> DiskSalt:
    """Return the salt of a mounted STATE, creating it first when absent. Blocking.

    Creation writes a temporary file (O_EXCL, mode 0600), syncs it, then links it to ``encryption-salt.yaml``:
    the link fails if the name exists, so an existing salt is never replaced, and a crash never leaves a
    half-written salt file behind. The salt is then read back and compared with what was written.

    Raises:
        SaltFileError: an existing file is corrupt (it is left untouched), or the salt cannot be written.
    """
    root = Path(state_root)
    existing = read_salt_sync(root)
    if existing is not None:
        return existing
    salt = DiskSalt.generate()
    final_path = root / SALT_FILE_NAME
    temp_path = root / _TEMP_NAME
    with contextlib.suppress(FileNotFoundError):
        temp_path.unlink()  # left over from a crash before the link
    try:
        fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, encode_salt_file(salt))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp_path, final_path)
        except FileExistsError:
            pass  # someone else created it meanwhile: theirs wins, read it below
        finally:
            temp_path.unlink()
        _fsync_dir(root)
    except OSError as exc:
        raise SaltFileError(f"salt file {final_path}: cannot create: {exc.strerror}") from None
    written = read_salt_sync(root)
    if written is None:
        raise SaltFileError(f"salt file {final_path}: vanished right after it was created")
    return written


async def read_salt(state_root: str | os.PathLike[str]) -> DiskSalt | None:
    """:func:`read_salt_sync` in a worker thread."""
    return await anyio.to_thread.run_sync(read_salt_sync, state_root)


async def load_or_create_salt(state_root: str | os.PathLike[str]) -> DiskSalt:
    """:func:`load_or_create_salt_sync` in a worker thread.

    This is what the EncryptionSalt controller calls once STATE is mounted.
    """
    return await anyio.to_thread.run_sync(load_or_create_salt_sync, state_root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

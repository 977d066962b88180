"""The control protocol between FuseActivator and the FUSE host: pure framing and request checks, no I/O.

One request and one reply per connection. A frame is a 4-byte big-endian length, that many bytes of JSON (an
object), then ``key_size`` raw bytes of volume key when the object names a ``key_size``. The key travels only
here, never in argv, the environment, a file or a reply; ``add``'s device goes along as a descriptor
(SCM_RIGHTS). Requests: ``add`` (a volume to serve), ``remove`` (stop serving one), ``list`` (what is served).
Replies: ``{"ok": true, ...}`` or ``{"ok": false, "error": "<why>"}``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

from ._ciphers import FUSE_CIPHERS
from ._errors import ActivationError
from ._model import check_name

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

SOCKET_NAME: Final = ".fuse-host.sock"
"""The host's control socket in the runtime directory (mode 0600, owned by root). The directory is 0755 (its
mount points are looked up by anyone), so a client sends a key only to a socket owned by root whose peer is
root (_fuse_channel.request checks both)."""
LOCK_NAME: Final = ".fuse-host.lock"
"""flock'd by whoever starts the host or hands it a volume, and by the host before it exits for want of
volumes: a volume is never handed to a host that is on its way out."""
LOG_NAME: Final = ".fuse-host.log"
"""The host's stderr (libfuse's and the host's own messages; never key material)."""

MAX_HEADER: Final = 1 << 16
MAX_KEY: Final = 64
_PREFIX: Final = struct.Struct(">I")


class ControlError(Exception):
    """A frame or request that does not follow the protocol; the message says what and never holds a key."""


@final
@dataclass(frozen=True)
class AddRequest:
    """A volume for the host to serve: the decrypted file ``<runtime dir>/<name>/<name>`` over a segment of
    the device whose descriptor comes with the request (``device`` is its path, for reports)."""

    name: str
    device: str
    offset: int
    size: int
    sector_size: int
    iv_tweak: int
    cipher: str

    def message(self) -> dict[str, object]:
        return {"op": "add", **self.__dict__}


@final
@dataclass(frozen=True)
class Served:
    """One volume a host serves, as ``list`` reports it."""

    name: str
    device: str
    offset: int
    size: int
    mountpoint: str


def encode(message: Mapping[str, object], key: bytes = b"") -> bytes:
    """One frame: ``message`` (with ``key_size`` when a key follows) and the key."""
    if len(key) > MAX_KEY:
        raise ControlError(f"a key of {len(key)} bytes is longer than any supported cipher takes")
    header = dict(message)
    if key:
        header["key_size"] = len(key)
    body = json.dumps(header, separators=(",", ":")).encode()
    if len(body) > MAX_HEADER:
        raise ControlError(f"a control message of {len(body)} bytes is over the {MAX_HEADER}-byte limit")
    return _PREFIX.pack(len(body)) + body + key


def read_frame(receive: Callable[[int], bytes]) -> tuple[dict[str, object], bytes]:
    """The message and key of one frame; ``receive(n)`` returns exactly ``n`` bytes or raises."""
    (length,) = _PREFIX.unpack(receive(_PREFIX.size))
    if not 0 < length <= MAX_HEADER:
        raise ControlError(f"a control message of {length} bytes (the limit is {MAX_HEADER})")
    try:
        message = json.loads(receive(length))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: deeply nested
        raise ControlError(f"a control message that is not JSON: {str(exc)[:200]}") from None
    if not isinstance(message, dict):
        raise ControlError("a control message that is not a JSON object")
    key_size = message.pop("key_size", 0)
    if not isinstance(key_size, int) or isinstance(key_size, bool) or not 0 <= key_size <= MAX_KEY:
        raise ControlError(f"key_size must be 0..{MAX_KEY}")
    return message, receive(key_size) if key_size else b""


def add_request(message: Mapping[str, object]) -> AddRequest:
    """The ``add`` request in ``message``, checked field by field (ControlError naming the field)."""
    if message.get("op") != "add":
        raise ControlError(f"not an add request: op {message.get('op')!r}")
    values = {field: message.get(field) for field in AddRequest.__dataclass_fields__}
    for field in ("name", "device", "cipher"):
        if not isinstance(values[field], str) or not values[field]:
            raise ControlError(f"add: {field} must be a non-empty string")
    for field in ("offset", "size", "sector_size", "iv_tweak"):
        value = values[field]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ControlError(f"add: {field} must be a non-negative integer")
    request = AddRequest(**values)  # type: ignore[arg-type]
    try:
        check_name(request.name)
    except ActivationError as exc:
        raise ControlError(f"add: {exc}") from None
    if request.sector_size not in (512, 1024, 2048, 4096):
        raise ControlError(f"add: sector_size {request.sector_size} is not 512, 1024, 2048 or 4096")
    if request.size == 0 or request.size % request.sector_size or request.offset % 512:
        raise ControlError(f"add: size {request.size} / offset {request.offset} do not fit the sector size")
    if request.cipher not in FUSE_CIPHERS:
        raise ControlError(f"add: the FUSE host does not decrypt {request.cipher!r}")
    return request


def name_request(message: Mapping[str, object], op: str) -> str:
    """The checked volume name of a ``remove`` request."""
    name = message.get("name")
    if message.get("op") != op or not isinstance(name, str):
        raise ControlError(f"not a {op} request with a name")
    try:
        return check_name(name)
    except ActivationError as exc:
        raise ControlError(f"{op}: {exc}") from None


def served_list(reply: Mapping[str, object]) -> list[Served]:
    """The volumes of a ``list`` reply; ControlError when it is not one."""
    volumes = reply.get("volumes")
    if reply.get("ok") is not True or not isinstance(volumes, list):
        raise ControlError(f"not a list reply: {str(reply.get('error', 'no volumes'))[:200]}")
    found = []
    for entry in volumes:
        if not isinstance(entry, dict):
            raise ControlError("a list entry that is not an object")
        name, device, mountpoint = entry.get("name"), entry.get("device"), entry.get("mountpoint")
        offset, size = entry.get("offset"), entry.get("size")
        if not (isinstance(name, str) and isinstance(device, str) and isinstance(mountpoint, str)):
            raise ControlError("a list entry without name, device or mountpoint")
        if not (isinstance(offset, int) and isinstance(size, int)):
            raise ControlError(f"list entry {name}: offset and size must be integers")
        found.append(Served(name, device, offset, size, mountpoint))
    return found


__all__ = [
    "LOCK_NAME",
    "LOG_NAME",
    "SOCKET_NAME",
    "AddRequest",
    "ControlError",
    "Served",
    "add_request",
    "encode",
    "name_request",
    "read_frame",
    "served_list",
]

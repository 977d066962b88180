"""The service manager's notification protocol (sd_notify(3)), by hand: one datagram of ``KEY=VALUE`` lines
to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace).

No libsystemd and no Python dependency: the protocol is one ``sendmsg``. A failed send is never fatal (the
volumes matter more than the manager hearing about them): it is logged once, and the manager's start timeout
then says the rest.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Final

import structlog

if TYPE_CHECKING:
    from collections.abc import MutableMapping

ENV_NOTIFY_SOCKET: Final = "NOTIFY_SOCKET"
MAX_VALUE: Final = 1024
"""Bytes (UTF-8) kept of one value: the whole datagram stays far below systemd's 4096-byte read (PIPE_BUF),
which drops a longer message whole."""

log = structlog.get_logger("volumed.notify")


def notify_address(value: str) -> bytes:
    """The socket address ``$NOTIFY_SOCKET`` names: an absolute path, or ``@name`` for the abstract name.

    Raises:
        ValueError: anything else (a relative path, systemd's ``vsock:`` form), naming the value.
    """
    if value.startswith("/"):
        return os.fsencode(value)
    if value.startswith("@") and len(value) > 1:
        return b"\0" + os.fsencode(value[1:])
    raise ValueError(f"{ENV_NOTIFY_SOCKET}={value!r} is neither an absolute path nor an @abstract name")


def one_line(value: str) -> bytes:
    """``value`` as one protocol line, in UTF-8: every control character (a newline would start a new
    assignment, so an error message could say READY=1) becomes a blank, what UTF-8 cannot hold (a path's
    undecodable bytes) a backslash escape, and the length is capped at `MAX_VALUE` bytes."""
    text = "".join(" " if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 else c for c in value)
    data = text.encode("utf-8", "backslashreplace")
    if len(data) <= MAX_VALUE:
        return data
    return data[: MAX_VALUE - 3].decode("utf-8", "ignore").encode() + b"..."


class Notifier:
    """Sends notifications to one socket; without an address every send is a no-op that returns False.

    The socket is non-blocking: a manager that does not read (its queue full) costs a dropped datagram, never
    a stalled event loop. The first failure is logged (a warning naming the socket), later ones are not.
    """

    def __init__(self, address: bytes | None) -> None:
        self._address = address
        self._socket: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """The notifier ``$NOTIFY_SOCKET`` asks for, taken out of ``environ`` (default: this process's), as
        sd_notify's ``unset_environment`` does: the FUSE servers and tools volumed starts must not notify in
        its name. Unset or empty: a no-op notifier. Unusable: a warning, and a no-op notifier."""
        environ = os.environ if environ is None else environ
        value = environ.pop(ENV_NOTIFY_SOCKET, "")
        if not value:
            return cls(None)
        try:
            return cls(notify_address(value))
        except ValueError as error:
            log.warning("service manager notifications are off", reason=str(error))
            return cls(None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str) -> bool:
        """READY=1, with the STATUS= it is ready in (one datagram)."""
        return self.send(("READY", "1"), ("STATUS", status))

    def status(self, text: str) -> bool:
        return self.send(("STATUS", text))

    def stopping(self) -> bool:
        return self.send(("STOPPING", "1"))

    def send(self, *fields: tuple[str, str]) -> bool:
        """One datagram with ``fields`` as ``KEY=VALUE`` lines; True when the kernel took it."""
        if self._address is None:
            return False
        message = b"".join(key.encode() + b"=" + one_line(value) + b"\n" for key, value in fields)
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
                )
            self._socket.sendmsg([message], [], 0, self._address)
        except OSError as error:
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot notify the service manager (not fatal; later failures are not logged)",
                    socket=self._shown_address(),
                    error=error.strerror or str(error),
                )
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _shown_address(self) -> str:
        assert self._address is not None
        address = os.fsdecode(self._address)
        return "@" + address[1:] if address.startswith("\0") else address

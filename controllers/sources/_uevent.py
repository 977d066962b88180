"""Kernel uevents (NETLINK_KOBJECT_UEVENT): hear block devices come, change and go instead of polling sysfs.

The kernel's own multicast group is used, not udev's: it exists without udevd (an initramfs), and devtmpfs has
made the device node by the time the event is sent. Only messages sent by the kernel (netlink port 0) count;
anything else on the socket is ignored.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol, final

import anyio

from ._burst import LONGEST, SETTLE, burst_end

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

NETLINK_KOBJECT_UEVENT: Final = 15
KERNEL_GROUP: Final = 1  # udevd re-broadcasts on group 2 after its rules ran; we need none of that
_RECEIVE_BUFFER: Final = 1 << 20  # a burst (a disk with many partitions, a dm table reload) fits
_SO_RCVBUFFORCE: Final = 33  # asm-generic/socket.h; Python's socket module does not name it
_MESSAGE_SIZE: Final = 8192  # the kernel caps one uevent's environment at 2 KiB (UEVENT_BUFFER_SIZE)


@final
@dataclass(frozen=True, slots=True)
class Uevent:
    """One kernel uevent: its action (``add``, ``change``, ``remove``, ``move``, ...) and properties."""

    action: str
    devpath: str
    properties: Mapping[str, str]

    @property
    def subsystem(self) -> str:
        return self.properties.get("SUBSYSTEM", "")

    @property
    def devname(self) -> str:
        """The device node's name under /dev (``sda1``, ``loop3``, ``dm-0``), or '' when it has none."""
        return self.properties.get("DEVNAME", "")


def parse_uevent(data: bytes) -> Uevent | None:
    """A kernel uevent message (``action@devpath`` then ``KEY=value`` fields, NUL-separated), or None for
    anything else (udev's ``libudev`` messages, garbage)."""
    fields = data.split(b"\0")
    head, _, devpath = fields[0].partition(b"@")
    if not head or not devpath:
        return None
    properties: dict[str, str] = {}
    for field in fields[1:]:
        key, sep, value = field.partition(b"=")
        if sep:
            properties[key.decode("ascii", "replace")] = value.decode("utf-8", "replace")
    action = head.decode("ascii", "replace")
    if properties.get("ACTION", action) != action:
        return None
    return Uevent(action, devpath.decode("utf-8", "replace"), MappingProxyType(properties))


class UeventsLostError(OSError):
    """The socket's buffer overflowed (ENOBUFS): some uevents were dropped by the kernel."""


@final
class UeventSocket:
    """A non-blocking netlink socket subscribed to the kernel's uevents; close it, or use it in ``with``."""

    __slots__ = ("_sock",)

    def __init__(self) -> None:
        sock = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
            NETLINK_KOBJECT_UEVENT,
        )
        try:
            try:  # past rmem_max; needs CAP_NET_ADMIN, which volumed has on a node
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RECEIVE_BUFFER)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
            sock.bind((0, KERNEL_GROUP))
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self) -> list[Uevent]:
        """Every uevent queued now (never blocks).

        Raises:
            UeventsLostError: the kernel dropped events since the last call (the socket stays usable).
        """
        events: list[Uevent] = []
        while True:
            try:
                data, (port, _groups) = self._sock.recvfrom(_MESSAGE_SIZE)
            except BlockingIOError:
                return events
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    raise UeventsLostError(
                        errno.ENOBUFS, "uevents were dropped: the receive buffer overflowed"
                    ) from None
                raise
            if port != 0:
                continue  # not from the kernel
            event = parse_uevent(data)
            if event is not None:
                events.append(event)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> UeventSocket:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class UeventSource(Protocol):
    """What `watch_uevent_source` reads: a file descriptor that turns readable when uevents are queued, and
    every uevent queued now (a `UeventSocket`; a test's fake)."""

    def fileno(self) -> int: ...

    def receive(self) -> list[Uevent]: ...


async def watch_uevents(accept: Callable[[Uevent], bool], changed: Callable[[], None]) -> None:
    """Call ``changed()`` once subscribed, then once per burst of uevents of which ``accept`` took one (or
    during which the kernel dropped some: any of them may have mattered). A burst ends `SETTLE` to twice
    `SETTLE` s after its last accepted uevent, or `LONGEST` s after its first (`burst_end`), so that a disk
    with many partitions costs one rescan and a continuous stream still one a second. Runs until cancelled.

    Raises:
        OSError: netlink uevents are unavailable (no such socket family in this kernel or sandbox).
    """
    with UeventSocket() as sock:
        await watch_uevent_source(sock, accept, changed)


async def watch_uevent_source(
    source: UeventSource,
    accept: Callable[[Uevent], bool],
    changed: Callable[[], None],
    *,
    settle: float = SETTLE,
    longest: float = LONGEST,
) -> None:
    """`watch_uevents` on a source already open, with its burst's ``settle`` and ``longest`` times."""
    changed()  # subscribed from now on: whatever happened before is read by the wake-up this causes
    while True:
        await anyio.wait_readable(source.fileno())
        if not _take(source, accept):
            continue
        await burst_end(partial(_take, source, accept), settle=settle, longest=longest)
        changed()


def _take(source: UeventSource, accept: Callable[[Uevent], bool]) -> bool:
    """Read what is queued: did ``accept`` take one of the uevents, or were some lost?"""
    try:
        events = source.receive()
    except UeventsLostError:
        return True
    return any([accept(event) for event in events])  # a list: accept sees every event


BLOCK_ACTIONS: Final = frozenset({"add", "change", "remove", "move"})


def is_block_change(event: Uevent) -> bool:
    """A block device (disk or partition) appeared, changed (media, size, partition table) or went away."""
    return event.subsystem == "block" and event.action in BLOCK_ACTIONS

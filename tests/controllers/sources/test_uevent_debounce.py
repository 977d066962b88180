"""A burst of block uevents (a disk and its partitions, partprobe, mkfs) wakes discovery once, not once per
event; a continuous stream still wakes it now and then. The uevents come through a datagram socketpair and
are parsed as the kernel's are: only the netlink socket itself is left out."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Final

import anyio
import pytest

from volumed.controllers.sources import is_block_change, parse_uevent, watch_uevent_source
from volumed.runtime.controller import Controller, EventSource
from volumed.runtime.testing import run_runtime

if TYPE_CHECKING:
    from collections.abc import Iterator

    from volumed.controllers.sources import Uevent
    from volumed.runtime.controller import ControllerContext, Wake

SETTLE: Final = 0.3  # far longer than a burst written without pause takes, even on a loaded machine
LONGEST: Final = 1.0
PARTITIONS: Final = 16
SOON: Final = 10.0


def partition_added(n: int) -> bytes:
    name = f"vdb{n}"
    return (
        f"add@/devices/pci0000:00/0000:00:05.0/virtio3/block/vdb/{name}\0ACTION=add\0"
        f"DEVPATH=/devices/pci0000:00/0000:00:05.0/virtio3/block/vdb/{name}\0SUBSYSTEM=block\0"
        f"DEVNAME={name}\0DEVTYPE=partition\0PARTN={n}\0SEQNUM={1000 + n}\0"
    ).encode()


class SocketpairSource:
    """Uevents written to ``kernel`` come out of ``receive``, parsed and filtered as `UeventSocket` does."""

    def __init__(self) -> None:
        self.kernel, self._reader = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._reader.setblocking(False)

    def fileno(self) -> int:
        return self._reader.fileno()

    def receive(self) -> list[Uevent]:
        events: list[Uevent] = []
        while True:
            try:
                data = self._reader.recv(8192)
            except BlockingIOError:
                return events
            event = parse_uevent(data)
            if event is not None:
                events.append(event)

    def close(self) -> None:
        self.kernel.close()
        self._reader.close()


@pytest.fixture
def source() -> Iterator[SocketpairSource]:
    source = SocketpairSource()
    yield source
    source.close()


class Rescans(Controller):
    """Counts its reconciles (the rescans), woken only by its uevent source."""

    name = "Rescans"

    def __init__(self, source: SocketpairSource) -> None:
        self.runs = 0
        self._ran = anyio.Event()

        async def uevents(wake: Wake) -> None:
            await watch_uevent_source(source, is_block_change, wake, settle=SETTLE, longest=LONGEST)

        self.sources = (EventSource("block uevents", uevents),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.runs += 1
        self._ran.set()

    async def reconciled(self, runs: int) -> None:
        with anyio.fail_after(SOON):
            while self.runs < runs:
                self._ran = anyio.Event()
                await self._ran.wait()


async def send_burst(source: SocketpairSource) -> None:
    """One uevent per partition, each read by the watcher before the next is sent (one batch each)."""
    for n in range(1, PARTITIONS + 1):
        source.kernel.send(partition_added(n))
        await anyio.wait_all_tasks_blocked()


async def test_a_burst_of_block_uevents_rescans_once_and_a_later_burst_once_more(
    source: SocketpairSource,
) -> None:
    rescans = Rescans(source)
    async with run_runtime(rescans):
        await rescans.reconciled(1)
        await anyio.wait_all_tasks_blocked()
        before = rescans.runs  # the start and the source's wake-up once subscribed (coalesced or not)

        await send_burst(source)
        await rescans.reconciled(before + 1)
        await anyio.wait_all_tasks_blocked()  # the watcher waits for the next uevent: no wake is pending
        assert rescans.runs == before + 1

        await send_burst(source)  # after the first burst's window: a change of its own
        await rescans.reconciled(before + 2)
        await anyio.wait_all_tasks_blocked()
        assert rescans.runs == before + 2


async def test_uevents_that_are_no_block_change_wake_nothing(source: SocketpairSource) -> None:
    wakes: list[None] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_uevent_source, source, is_block_change, lambda: wakes.append(None))
        await anyio.wait_all_tasks_blocked()
        assert len(wakes) == 1  # subscribed
        source.kernel.send(b"add@/devices/virtual/net/tap0\0ACTION=add\0SUBSYSTEM=net\0")
        await anyio.wait_all_tasks_blocked()
        assert len(wakes) == 1
        tg.cancel_scope.cancel()


async def test_a_continuous_stream_of_block_uevents_still_wakes_within_the_longest_delay(
    source: SocketpairSource,
) -> None:
    """Uevents closer together than the settle time never leave a quiet gap: the wake comes anyway."""
    wakes: list[None] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: watch_uevent_source(
                source,
                is_block_change,
                lambda: wakes.append(None),
                settle=SETTLE,
                longest=LONGEST,
            )
        )
        await anyio.wait_all_tasks_blocked()
        assert len(wakes) == 1  # subscribed
        n = 0
        with anyio.fail_after(SOON):
            while len(wakes) < 3:  # two wakes while the stream goes on
                n += 1
                source.kernel.send(partition_added(n % PARTITIONS + 1))
                await anyio.sleep(SETTLE / 6)
        tg.cancel_scope.cancel()

"""DiscoveryController: publishes Disk and DiscoveredVolume resources, rescanning on block uevents (node
disks) and every few seconds."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import anyio.to_thread

from volumed.resources import BLOCK, DiscoveredVolumeDefinition, DiskDefinition
from volumed.runtime.controller import Controller, EventSource, Output

from ..sources import is_block_change, watch_uevents
from ._discovery import discover

if TYPE_CHECKING:
    from collections.abc import Sequence

    from volumed.runtime.controller import ControllerContext, Wake


async def _block_uevents(wake: Wake) -> None:
    """Wake on block devices coming, changing and going; ends (polling only) where netlink uevents cannot
    exist at all."""
    try:
        await watch_uevents(is_block_change, wake)
    except OSError as exc:
        if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
            return
        raise


class DiscoveryController(Controller):
    """Disks from ``--disk`` images (or sysfs without them) and their volumes, probed every ``interval`` s.

    Node disks are also rescanned as soon as the kernel announces a block device added, changed or removed
    (a uevent); the interval stays as the fallback. Image files have no uevents: they are only polled.
    Locating needs only partition labels, which change rarely; controllers that change a disk probe what they
    changed themselves rather than wait for the next scan.
    """

    name = "Discovery"
    outputs = (
        Output(DiskDefinition.type, namespace=BLOCK),
        Output(DiscoveredVolumeDefinition.type, namespace=BLOCK),
    )

    def __init__(self, images: Sequence[str], *, interval: float = 5.0) -> None:
        self._images = tuple(images)
        self._interval = interval
        if not self._images:
            self.sources = (EventSource("block uevents", _block_uevents),)
        self._unreadable: dict[str, str] = {}  # what was logged, so a rescan does not repeat it
        self._invalid: dict[str, str] = {}

    async def reconcile(self, ctx: ControllerContext) -> None:
        ctx.requeue_after(self._interval)
        found = await anyio.to_thread.run_sync(discover, self._images)
        self._report_unreadable(ctx, found.unreadable)
        self._report_invalid(ctx, found.invalid, set(found.damaged.values()))
        # Volumes before their disks: whoever sees a Disk can rely on its volumes being published already
        # (the VolumeFormatter reads Disks first and reports a volume missing only then).
        for volume_id, volume in found.volumes.items():
            await ctx.apply(DiscoveredVolumeDefinition.new(volume_id, volume))
        for disk_id, disk in found.disks.items():
            await ctx.apply(DiskDefinition.new(disk_id, disk))

    def _report_unreadable(self, ctx: ControllerContext, unreadable: dict[str, str]) -> None:
        """Log a skipped disk once (again only when the reason changes), and when it reads again."""
        for path, reason in unreadable.items():
            if self._unreadable.get(path) != reason:
                ctx.logger.warning("disk skipped: cannot be read", disk=path, reason=reason)
        for path in self._unreadable.keys() - unreadable.keys():
            ctx.logger.info("disk readable again", disk=path)
        self._unreadable = dict(unreadable)

    def _report_invalid(self, ctx: ControllerContext, invalid: dict[str, str], damaged: set[str]) -> None:
        """Log once (again when the reason changes) that nothing on a disk is used, and when that ends;
        ``damaged`` disks have a table that cannot be read at all (both copies damaged)."""
        for path, reason in invalid.items():
            if self._invalid.get(path) != reason:
                what = "unreadable" if path in damaged else "invalid"
                ctx.logger.error(f"disk not used: {what} partition table", disk=path, reason=reason)
        for path in self._invalid.keys() - invalid.keys():
            ctx.logger.info("disk partition table valid again", disk=path)
        self._invalid = dict(invalid)

"""SwapActivator: swap volumes (``SwapVolumeConfig``) get swapon once ready, where other volumes are mounted.

Talos' MountController does the same for a volume whose filesystem is ``swap``: ``swap.On(source,
SWAP_FLAG_DISCARD_ONCE)`` where other volumes are mounted, ``swap.Off`` where they are unmounted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from volumed.resources import (
    BLOCK,
    SWAP_FILESYSTEM,
    MountStatusDefinition,
    MountStatusSpec,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeStatusSpec,
)
from volumed.runtime import Kind, Phase, Pointer
from volumed.runtime.controller import Controller, Input, InputKind, Output, OutputKind
from volumed.storage.filesystem import FilesystemError

from .._lasting_problem import LastingProblem

if TYPE_CHECKING:
    from volumed.runtime import Resource
    from volumed.runtime.controller import ControllerContext

    from ._services import VolumeServices

REQUESTER: Final = "volumed"
RETRY: Final = 5.0
"""Seconds between retries of a swapon or swapoff that failed."""
FUSE_SWAP_WARNING: Final = (
    "swap on an encrypted volume of the fuse backend: its pages are written through a userspace process,"
    " which can deadlock under memory pressure; use the dm backend for swap on a real node"
)


def status_id(volume_id: str) -> str:
    """The id of a swap volume's MountStatus, as the Mounter names its own (``<volume>-volumed``)."""
    return f"{volume_id}-{REQUESTER}"


class SwapActivator(Controller):
    """Turns swap on on every ready swap volume, and off when its config goes or its status tears down.

    Each active swap holds a finalizer on its VolumeStatus and a MountStatus (filesystem ``swap``, no target),
    so the VolumeFormatter does not close the volume under it. A failed swapon or swapoff is warned about
    once per distinct error and retried every ``retry_interval`` seconds; a swap still on stays known (and
    its volume open). At shutdown `VolumeServices.close_all` turns off what is still on.
    """

    name = "SwapActivator"
    inputs = (
        Input(BLOCK, VolumeConfigDefinition.type),
        Input(BLOCK, VolumeStatusDefinition.type, kind=InputKind.STRONG),
    )
    outputs = (Output(MountStatusDefinition.type, kind=OutputKind.SHARED, namespace=BLOCK),)

    def __init__(self, services: VolumeServices, *, retry_interval: float = RETRY) -> None:
        self._services = services
        self._retry = retry_interval
        self._problems: dict[str, LastingProblem] = {}

    async def reconcile(self, ctx: ControllerContext) -> None:
        configs = {
            c.id: c.spec for c in await ctx.list(Kind(BLOCK, VolumeConfigDefinition.type), VolumeConfigSpec)
        }
        wanted: dict[str, Resource[VolumeStatusSpec]] = {}
        for status in await ctx.list(Kind(BLOCK, VolumeStatusDefinition.type), VolumeStatusSpec):
            config = configs.get(status.id)
            if (
                config is not None
                and config.filesystem == SWAP_FILESYSTEM
                and status.metadata.phase is Phase.RUNNING
                and status.spec.phase == VolumePhase.READY
            ):
                wanted[status.id] = status

        for volume_id in sorted(set(self._services.swaps) - set(wanted)):
            await self._off(ctx, volume_id)
        for volume_id in set(self._problems) - set(wanted) - set(self._services.swaps):
            del self._problems[volume_id]

        for volume_id, status in sorted(wanted.items()):
            device = status.spec.mount_location
            if volume_id not in self._services.swaps:
                await ctx.add_finalizer(status.pointer)
                try:
                    await self._services.swap_on(volume_id, device)
                except (FilesystemError, OSError) as error:
                    await ctx.remove_finalizer(status.pointer)
                    self._report(ctx, volume_id, f"cannot turn swap on on {volume_id} (retrying)", error)
                    ctx.requeue_after(self._retry)
                    continue
                self._cleared(ctx, volume_id, f"swap is on on {volume_id}")
                if (
                    volume_id in self._services.opened
                    and (await self._services.activator()).backend == "fuse"
                ):
                    ctx.logger.warning(FUSE_SWAP_WARNING, volume=volume_id, device=device)
            await ctx.apply(MountStatusDefinition.new(status_id(volume_id), _mount_status(volume_id, device)))

    async def _off(self, ctx: ControllerContext, volume_id: str) -> None:
        """swapoff, then release the volume (finalizer). A failure keeps the swap, its MountStatus and the
        finalizer, and is retried."""
        device = self._services.swaps[volume_id]
        try:
            await self._services.swap_off(volume_id)
        except (FilesystemError, OSError) as error:
            self._report(
                ctx, volume_id, f"cannot turn swap off on {volume_id}; it stays on (retrying)", error
            )
            await ctx.apply(MountStatusDefinition.new(status_id(volume_id), _mount_status(volume_id, device)))
            ctx.requeue_after(self._retry)
            return
        self._cleared(ctx, volume_id, f"swap is off on {volume_id}")
        pointer = Pointer(BLOCK, VolumeStatusDefinition.type, volume_id)
        status = await ctx.find(pointer)
        if status is not None and self.name in status.metadata.finalizers:
            await ctx.remove_finalizer(pointer)

    def _report(self, ctx: ControllerContext, volume_id: str, message: str, error: Exception) -> None:
        self._problems.setdefault(volume_id, LastingProblem()).report(ctx.logger, message, str(error))

    def _cleared(self, ctx: ControllerContext, volume_id: str, message: str) -> None:
        problem = self._problems.pop(volume_id, None)
        if problem is not None and problem.clear():
            ctx.logger.info(message)


def _mount_status(volume_id: str, device: str) -> MountStatusSpec:
    return MountStatusSpec(
        volume_id=volume_id, requester=REQUESTER, source=device, target="", filesystem=SWAP_FILESYSTEM
    )

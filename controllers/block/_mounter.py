"""Mount requests for configured volumes, and the Mounter that mounts them once the volumes are ready."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from volumed.resources import (
    BLOCK,
    MountStatusDefinition,
    MountStatusSpec,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumeMountRequestDefinition,
    VolumeMountRequestSpec,
    VolumePhase,
    VolumeStatusDefinition,
    VolumeStatusSpec,
)
from volumed.runtime import Kind, Phase, Pointer
from volumed.runtime.controller import Controller, Input, InputKind, Output
from volumed.storage.filesystem import FilesystemError, mount

from ._services import ensure_directory

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime import Resource
    from volumed.runtime.controller import ControllerContext

    from ._services import VolumeServices

REQUESTER: Final = "volumed"


class MountRequester(Controller):
    """Asks for every configured volume with a mount target to be mounted (requester ``volumed``)."""

    name = "MountRequester"
    inputs = (Input(BLOCK, VolumeConfigDefinition.type),)
    outputs = (Output(VolumeMountRequestDefinition.type, namespace=BLOCK),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        for config in await ctx.list(Kind(BLOCK, VolumeConfigDefinition.type), VolumeConfigSpec):
            if config.spec.mount_target:
                request = VolumeMountRequestSpec(volume_id=config.id, requester=REQUESTER)
                await ctx.apply(VolumeMountRequestDefinition.new(f"{config.id}-{REQUESTER}", request))


class Mounter(Controller):
    """Mounts ready volumes at their targets under the root, parents before children.

    Each mount puts a finalizer on the VolumeStatus, so the volume is not closed while mounted; when the
    request goes away or the status tears down, the volume is unmounted and the finalizer removed.
    """

    name = "Mounter"
    inputs = (
        Input(BLOCK, VolumeMountRequestDefinition.type),
        Input(BLOCK, VolumeConfigDefinition.type),
        Input(BLOCK, VolumeStatusDefinition.type, kind=InputKind.STRONG),
    )
    outputs = (Output(MountStatusDefinition.type, namespace=BLOCK),)

    def __init__(self, services: VolumeServices) -> None:
        self._services = services

    async def reconcile(self, ctx: ControllerContext) -> None:
        requests = await ctx.list(Kind(BLOCK, VolumeMountRequestDefinition.type), VolumeMountRequestSpec)
        configs = {
            c.id: c.spec for c in await ctx.list(Kind(BLOCK, VolumeConfigDefinition.type), VolumeConfigSpec)
        }
        statuses = {
            s.id: s for s in await ctx.list(Kind(BLOCK, VolumeStatusDefinition.type), VolumeStatusSpec)
        }

        wanted: dict[str, tuple[Resource[VolumeMountRequestSpec], Resource[VolumeStatusSpec], Path]] = {}
        for request in requests:
            volume_id = request.spec.volume_id
            status, config = statuses.get(volume_id), configs.get(volume_id)
            if status is None or config is None or not config.mount_target:
                continue
            if status.metadata.phase is Phase.RUNNING and status.spec.phase == VolumePhase.READY:
                wanted[request.id] = (request, status, self._services.target(config.mount_target))

        for request_id in sorted(set(self._services.mounts) - set(wanted), key=self._depth, reverse=True):
            await self._unmount(ctx, request_id)

        for request_id, (request, status, target) in sorted(
            wanted.items(), key=lambda item: len(item[1][2].parts)
        ):
            parents = [t for r, (_, _, t) in wanted.items() if r != request_id and t in target.parents]
            if any(t not in self._services.mounts.values() for t in parents):
                continue  # mounted once its parent is (EPHEMERAL at /var before /var/mnt/<name>)
            if request_id not in self._services.mounts:
                await ctx.add_finalizer(status.pointer)
                try:
                    await anyio.to_thread.run_sync(ensure_directory, target)
                    await anyio.to_thread.run_sync(
                        partial(mount, status.spec.mount_location, target, fstype=status.spec.filesystem)
                    )
                except (FilesystemError, OSError):
                    await ctx.remove_finalizer(status.pointer)
                    raise
                self._services.mounts[request_id] = target
                ctx.logger.info("mounted", volume=status.id, target=str(target))
            await ctx.apply(
                MountStatusDefinition.new(
                    request_id,
                    MountStatusSpec(
                        volume_id=status.id,
                        requester=request.spec.requester,
                        source=status.spec.mount_location,
                        target=str(target),
                        filesystem=status.spec.filesystem,
                        read_only=request.spec.read_only,
                    ),
                )
            )

    def _depth(self, request_id: str) -> int:
        return len(self._services.mounts[request_id].parts)

    async def _unmount(self, ctx: ControllerContext, request_id: str) -> None:
        await self._services.unmount(request_id)
        volume_id = request_id.removesuffix(f"-{REQUESTER}")
        pointer = Pointer(BLOCK, VolumeStatusDefinition.type, volume_id)
        status = await ctx.find(pointer)
        if status is not None and self.name in status.metadata.finalizers:
            await ctx.remove_finalizer(pointer)

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
from volumed.runtime.controller import Controller, Input, InputKind, Output, OutputKind
from volumed.storage.filesystem import FilesystemError, MountConflictError, find_mount, mount, remount

from .._lasting_problem import LastingProblem
from ._directory import is_directory, mount_directory
from ._directory import parent_target as directory_parent
from ._mount_options import PROJECT_QUOTA, mount_options
from ._services import ensure_directory

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from volumed.runtime import Resource
    from volumed.runtime.controller import ControllerContext

    from ._services import VolumeServices

REQUESTER: Final = "volumed"

CONFLICT_RETRY: Final = 5.0
"""Seconds between quiet retries of a mount whose target has something else mounted on it."""


def _check_target(target: Path, do_mount: Callable[[], bool], *, make: bool = True) -> None:
    """Make the target folder (unless not ``make``: a directory volume's is made by ``do_mount``, through no
    symbolic link); raise ``MountConflictError`` when another source is mounted there. Blocking.

    With something mounted at ``target``, ``mount`` only compares: it returns (the volume is there already)
    or raises; it mounts only on a free target, so this mounts nothing unless the target was freed meanwhile.
    """
    if make:
        ensure_directory(target)
    if find_mount(target) is not None:
        do_mount()


def _refusal(error: BaseException, options: tuple[str, ...]) -> str:
    """The mount's error, saying what the options asked for when one is a likely cause: a kernel built
    without xfs quota support refuses ``prjquota`` with mount's generic 'wrong fs type, bad option' line."""
    if PROJECT_QUOTA not in options:
        return str(error)
    return (
        f"{error}; it was mounted with {PROJECT_QUOTA} (project quota support is configured for it:"
        " filesystem.projectQuotaSupport, or machine.features.diskQuotaSupport for EPHEMERAL), which a kernel"
        " without xfs quota support (CONFIG_XFS_QUOTA) refuses; it is not mounted without it"
    )


def _read_only_now(target: Path, wanted: bool, *, can_remount: bool) -> tuple[bool, str]:
    """Whether the mount at ``target`` is read-only, after remounting it as ``wanted`` when it is not (a live
    change of mount.readOnly); with the error when that failed (it stays as it is). Blocking."""
    mounted = find_mount(target)
    read_only = mounted is not None and "ro" in mounted.options
    if mounted is None or read_only == wanted or not can_remount:
        return read_only, ""
    try:
        remount(target, read_only=wanted)
    except (FilesystemError, OSError) as error:
        return read_only, str(error)
    return wanted, ""


class MountRequester(Controller):
    """Asks for every configured volume with a mount target to be mounted (requester ``volumed``)."""

    name = "MountRequester"
    inputs = (Input(BLOCK, VolumeConfigDefinition.type),)
    outputs = (Output(VolumeMountRequestDefinition.type, namespace=BLOCK),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        for config in await ctx.list(Kind(BLOCK, VolumeConfigDefinition.type), VolumeConfigSpec):
            if config.spec.mount_target:
                request = VolumeMountRequestSpec(
                    volume_id=config.id, requester=REQUESTER, read_only=config.spec.read_only
                )
                await ctx.apply(VolumeMountRequestDefinition.new(f"{config.id}-{REQUESTER}", request))


class Mounter(Controller):
    """Mounts ready volumes at their targets under the root, parents before children.

    A target below another configured volume's (/var/mnt/<name> below EPHEMERAL's /var) is mounted only once
    that volume is mounted there, ready or not yet, as Talos' MountController waits for the parent mount
    point: an existing volume, ready long before EPHEMERAL, was mounted first and then hidden under /var.
    A child whose parent is not mounted waits, logged once per phase of the parent (with its name and phase).

    A live change of mount.readOnly remounts the volume (``mount -o remount``); when that fails (a file open
    for writing, a read-only device) it stays as it is, with one warning. The MountStatus says what is
    mounted, read from the mount table.

    Each mount puts a finalizer on the VolumeStatus, so the volume is not closed while mounted; when the
    request goes away or the status tears down, the volume is unmounted and the finalizer removed.

    A target where something else is mounted (``MountConflictError``) waits for an operator: it is warned
    about once, in one line, again only when the conflict changes, and retried every ``retry_interval``
    seconds without failing the reconcile (a failure logged a traceback on every retry). The other volumes
    are mounted meanwhile. A mount that fails (the filesystem does not read) is handled the same way: one
    warning per distinct error, a retry every ``retry_interval`` seconds, an info line once it mounts.
    """

    name = "Mounter"
    inputs = (
        Input(BLOCK, VolumeMountRequestDefinition.type),
        Input(BLOCK, VolumeConfigDefinition.type),
        Input(BLOCK, VolumeStatusDefinition.type, kind=InputKind.STRONG),
    )
    # shared: the SwapActivator publishes the MountStatus of each swap it turned on
    outputs = (Output(MountStatusDefinition.type, kind=OutputKind.SHARED, namespace=BLOCK),)

    def __init__(self, services: VolumeServices, *, retry_interval: float = CONFLICT_RETRY) -> None:
        self._services = services
        self._retry = retry_interval
        self._conflicts: dict[str, LastingProblem] = {}
        self._failures: dict[str, tuple[LastingProblem, float]] = {}  # request -> problem, next attempt
        self._busy: dict[str, LastingProblem] = {}  # request -> its unmount's failure
        # request -> the parent it was last logged waiting for, with that parent's phase then: logged again
        # when the phase changes (each status is published as its volume's attempt ends, a child's before its
        # parent's: "not published", then "failed")
        self._waiting: dict[str, tuple[str, str]] = {}
        self._remounts: dict[str, LastingProblem] = {}  # request -> its failed remount

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
        for request_id in set(self._conflicts) - set(wanted):
            del self._conflicts[request_id]  # a later request for it warns afresh
        for request_id in set(self._failures) - set(wanted):
            del self._failures[request_id]
        for request_id in set(self._remounts) - set(wanted):
            del self._remounts[request_id]
        # every configured target, mounted or not: a child waits for its parent even before it is ready
        configured = {
            r.spec.volume_id: self._services.target(configs[r.spec.volume_id].mount_target)
            for r in requests
            if r.spec.volume_id in configs and configs[r.spec.volume_id].mount_target
        }
        for request_id in set(self._busy) & set(wanted):
            del self._busy[request_id]  # wanted again while still mounted: a later busy unmount warns afresh

        for request_id, (request, status, target) in sorted(
            wanted.items(), key=lambda item: len(item[1][2].parts)
        ):
            unmounted = sorted(
                (v, t)
                for v, t in configured.items()
                if v != status.id and t in target.parents and t not in self._services.mounts.values()
            )
            if unmounted:  # mounted once its parent is (EPHEMERAL at /var before /var/mnt/<name>)
                parent, parent_target = unmounted[-1]
                phase = statuses[parent].spec.phase.value if parent in statuses else "not published"
                if self._waiting.get(request_id) != (parent, phase):
                    self._waiting[request_id] = (parent, phase)
                    ctx.logger.info(
                        f"{status.id} waits for {parent} to be mounted at {parent_target} ({parent}: {phase})"
                    )
                continue
            self._waiting.pop(request_id, None)
            if request_id not in self._services.mounts:
                options = mount_options(configs[status.id])
                do_mount = (
                    # a directory of EPHEMERAL, bind mounted onto itself
                    partial(mount_directory, target, directory_parent(self._services))
                    if is_directory(configs[status.id])
                    else partial(
                        mount,
                        status.spec.mount_location,
                        target,
                        fstype=status.spec.filesystem,
                        options=options,
                        read_only=request.spec.read_only,
                    )
                )
                try:
                    # Before the finalizer: its writes wake this controller, so a conflict found after it
                    # would retry at once, in a loop, instead of every retry_interval.
                    await anyio.to_thread.run_sync(
                        partial(_check_target, target, do_mount, make=not is_directory(configs[status.id]))
                    )
                except MountConflictError as error:
                    self._conflicts.setdefault(request_id, LastingProblem()).report(
                        ctx.logger,
                        f"cannot mount {status.id}: something else is mounted at its target (retrying)",
                        str(error),
                    )
                    ctx.requeue_after(self._retry)
                    continue
                failure = self._failures.get(request_id)
                now = anyio.current_time()
                if failure is not None and now < failure[1]:
                    # Woken early (by the finalizer writes of the last attempt): wait for the retry time,
                    # or a failing mount would be retried in a busy loop.
                    ctx.requeue_after(failure[1] - now)
                    continue
                await ctx.add_finalizer(status.pointer)
                try:
                    await anyio.to_thread.run_sync(do_mount)
                except (FilesystemError, OSError) as error:
                    await ctx.remove_finalizer(status.pointer)
                    problem = failure[0] if failure is not None else LastingProblem()
                    problem.report(
                        ctx.logger, f"cannot mount {status.id} (retrying)", _refusal(error, options)
                    )
                    self._failures[request_id] = (problem, anyio.current_time() + self._retry)
                    ctx.requeue_after(self._retry)
                    continue
                self._services.mounted(request_id, status.id, target)
                ctx.logger.info("mounted", volume=status.id, target=str(target))
                if self._failures.pop(request_id, None) is not None:
                    ctx.logger.info(f"{status.id} mounts again")
                conflict = self._conflicts.pop(request_id, None)
                if conflict is not None and conflict.clear():
                    ctx.logger.info(f"the mount conflict of {status.id} is gone")
            read_only, refused = await anyio.to_thread.run_sync(
                partial(
                    _read_only_now,
                    target,
                    request.spec.read_only,
                    can_remount=not is_directory(configs[status.id]),
                )
            )
            if refused:
                self._remounts.setdefault(request_id, LastingProblem()).report(
                    ctx.logger,
                    f"cannot remount {status.id} {'read-only' if request.spec.read_only else 'read-write'};"
                    f" it stays {'read-only' if read_only else 'read-write'} (retrying)",
                    refused,
                )
                ctx.requeue_after(self._retry)
            elif self._remounts.pop(request_id, None) is not None:
                ctx.logger.info(f"{status.id} is remounted after all")
            await ctx.apply(
                MountStatusDefinition.new(
                    request_id,
                    MountStatusSpec(
                        volume_id=status.id,
                        requester=request.spec.requester,
                        source=status.spec.mount_location,
                        target=str(target),
                        filesystem=status.spec.filesystem,
                        read_only=read_only,
                        project_quota_support=configs[status.id].project_quota_support,
                    ),
                )
            )

    def _depth(self, request_id: str) -> int:
        return len(self._services.mounts[request_id].parts)

    async def _unmount(self, ctx: ControllerContext, request_id: str) -> None:
        """Unmount, then release the volume (finalizer). A busy target keeps the mount, its MountStatus (the
        VolumeFormatter closes no mounted volume) and the finalizer, and is tried again every
        retry_interval."""
        volume_id = request_id.removesuffix(f"-{REQUESTER}")
        try:
            await self._services.unmount(request_id)
        except (FilesystemError, OSError) as error:
            self._busy.setdefault(request_id, LastingProblem()).report(
                ctx.logger,
                f"cannot unmount {volume_id}: its target is in use; it stays mounted and open (retrying)",
                str(error),
            )
            still = await ctx.find(Pointer(BLOCK, MountStatusDefinition.type, request_id), MountStatusSpec)
            if still is not None:
                await ctx.apply(MountStatusDefinition.new(request_id, still.spec))
            ctx.requeue_after(self._retry)
            return
        if self._busy.pop(request_id, None) is not None:
            ctx.logger.info(f"{volume_id} is unmounted after all")
        pointer = Pointer(BLOCK, VolumeStatusDefinition.type, volume_id)
        status = await ctx.find(pointer)
        if status is not None and self.name in status.metadata.finalizers:
            await ctx.remove_finalizer(pointer)

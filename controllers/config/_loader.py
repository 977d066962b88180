"""ConfigLoader: the machine config file -> VolumeConfig, VolumeKeySecrets, ZswapConfig, ConfigStatus."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from volumed.config import MAX_CONFIG_BYTES
from volumed.resources import (
    BLOCK,
    CONFIG,
    CONFIG_STATUS_ID,
    ZSWAP_ID,
    ConfigStatusDefinition,
    ConfigStatusSpec,
    VolumeConfigDefinition,
    VolumeKeySecretsDefinition,
    ZswapConfigDefinition,
    ZswapConfigSpec,
)
from volumed.runtime.controller import Controller, EventSource, Output, OutputKind

from ..sources import watch_files
from ._translate import DesiredVolume, desired_volumes
from ._zswap import zswap_config

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.config import ConfigIssue, MachineConfig
    from volumed.runtime.controller import ControllerContext, Wake

STAGED_SUFFIX: Final = ".staged"
REJECTED_SUFFIX: Final = ".rejected"
# Without a working inotify watch, a change the poll sees is read once the file's size and times have not
# changed for this long (a writer still writing changes them).
SETTLE_SECONDS: Final = 2.0


def staged_path(config_path: Path) -> Path:
    """Where `volumed apply-config --mode staged` leaves a config for the next start."""
    return config_path.with_name(config_path.name + STAGED_SUFFIX)


@dataclass(frozen=True)
class _Applied:
    digest: str
    documents: int
    volumes: tuple[DesiredVolume, ...]
    not_supported_yet: tuple[str, ...] = ()
    zswap: ZswapConfigSpec | None = None


class NotRegularFileError(OSError):
    """The config is a FIFO, a pipe, a device...: its reads block or end early, never a whole config."""


class ShortReadError(OSError):
    """The read ended before the size the file had when opened: it is being truncated or rewritten."""


def check_config(data: bytes) -> tuple[MachineConfig | None, list[ConfigIssue]]:
    """`volumed.config.check_config`, whose module is imported here, on first use (in the worker thread that
    checks): with PyYAML it is ~12 % of `import volumed.controllers`."""
    from volumed import config

    return config.check_config(data)


def _read(path: Path) -> bytes | None:
    """The file's bytes; None when it does not exist.

    Raises:
        NotRegularFileError: not a regular file (opened without blocking, so a FIFO with no writer does
            not hold the thread, and the runtime's stop, forever).
        ShortReadError: fewer bytes than its size: read again later.
    """
    from volumed.config import read_config_file  # see check_config

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(f"{path}: not a regular file (a FIFO, pipe or device is never read)")
        data = read_config_file(file)  # at most one byte past the size limit: a huge file is not read whole
    if len(data) < min(info.st_size, MAX_CONFIG_BYTES + 1):
        raise ShortReadError(f"{path}: read {len(data)} of {info.st_size} bytes")
    return data


def _stat_key(path: Path) -> tuple[int, ...] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _promote_staged(config_path: Path) -> tuple[bool, str | None]:
    """Replace the config with a staged one (at start only, as Talos applies staged configs at boot) when
    the staged one is valid; else keep the config and move the staged file aside to ``.staged.rejected``.

    Returns whether it was promoted, and why not when a staged file was rejected.
    """
    staged = staged_path(config_path)
    try:
        data = _read(staged)
    except OSError as error:  # not a regular file, or still being written
        reason = str(error)
    else:
        if data is None:
            return False, None
        machine, issues = check_config(data)
        if machine is not None and not issues:
            os.replace(staged, config_path)
            return True, None
        reason = str(issues[0]) if issues else "invalid"
    os.replace(staged, staged.with_name(staged.name + REJECTED_SUFFIX))
    return False, reason


class ConfigLoader(Controller):
    """Reads the config file given to `volumed run` and keeps the volume resources in line with it.

    The file is re-read when inotify says it (or its staged file) was closed after writing, replaced or
    removed, and applied at once. Every ``poll_interval`` seconds the file's stat is checked too (a fallback
    for changes inotify does not report): a change seen only so is not read while the watch works (a writer
    still has the file open; its close wakes us), and otherwise once the stat has not changed for
    SETTLE_SECONDS. An empty, short-read or non-regular file is never applied. An invalid new
    config is reported in ConfigStatus and changes nothing: the volumes of the last valid config stay as they
    are. With no config file at all nothing is produced (STATE then comes from META, see MetaStore).
    """

    name = "ConfigLoader"
    outputs = (
        Output(VolumeConfigDefinition.type, OutputKind.SHARED, BLOCK),
        Output(VolumeKeySecretsDefinition.type, OutputKind.SHARED, BLOCK),
        Output(ZswapConfigDefinition.type, OutputKind.EXCLUSIVE, BLOCK),
        Output(ConfigStatusDefinition.type, OutputKind.EXCLUSIVE, CONFIG),
    )

    def __init__(self, config_path: Path | None, *, poll_interval: float = 10.0) -> None:
        self._path = config_path
        self._poll = poll_interval
        if config_path is not None:
            self._directory = os.path.dirname(os.path.abspath(config_path))
            self.sources = (EventSource("config file", self._watch),)
        self._applied: _Applied | None = None
        self._rejected: tuple[str, tuple[str, ...]] | None = (
            None  # digest and errors of the last invalid file
        )
        self._started = False
        self._promoted = False
        self._watching = False  # the inotify watch is set up and working
        self._event = False  # inotify reported a complete write, rename or delete since the last reconcile
        self._last: tuple[tuple[int, ...] | None, bytes | None] | None = (
            None  # stat and bytes of the last read
        )
        self._settling: tuple[tuple[int, ...] | None, float] | None = None  # a changed stat, since when

    async def _watch(self, wake: Wake) -> None:
        """Wake on the config and its staged file being closed after writing, moved or deleted (never on a
        file still being written: that read would see half a config)."""
        path = self._path
        assert path is not None

        def changed() -> None:
            self._watching = True
            self._event = True
            wake()

        try:
            await watch_files(self._directory, (path.name, staged_path(path).name), changed)
        finally:
            self._watching = False

    def _poll_may_read(self, path: Path, key: tuple[int, ...] | None, event: bool) -> bool:
        """Whether this reconcile reads the file. After an inotify event, at start, and when nothing changed:
        yes. A change seen only by the poll is a file still open for writing when inotify watches it (its
        close will wake us): no; else (no watch, or a symlink whose target inotify does not see) once its
        stat has been the same for SETTLE_SECONDS."""
        if event or self._last is None or self._last[0] == key:
            self._settling = None
            return True
        if self._watching and not os.path.islink(path):
            return False
        now = time.monotonic()
        if self._settling is None or self._settling[0] != key:
            self._settling = (key, now)
        if now - self._settling[1] >= SETTLE_SECONDS:
            self._settling = None
            return True
        return False

    async def reconcile(self, ctx: ControllerContext) -> None:
        ctx.requeue_after(self._poll)
        if self._path is None:
            await ctx.apply(ConfigStatusDefinition.new(CONFIG_STATUS_ID, ConfigStatusSpec()))
            return
        path = self._path
        if not self._started:
            self._started = True
            self._promoted, rejected = await anyio.to_thread.run_sync(_promote_staged, path)
            if self._promoted:
                ctx.logger.info("promoted the staged config", path=str(path))
            elif rejected is not None:
                ctx.logger.warning(
                    "staged config is invalid; kept the config, moved the staged file aside",
                    path=str(staged_path(path)) + REJECTED_SUFFIX,
                    reason=rejected,
                )
        event, self._event = self._event, False
        key = await anyio.to_thread.run_sync(_stat_key, path)
        not_regular: str | None = None
        if self._poll_may_read(path, key, event):
            try:
                data = await anyio.to_thread.run_sync(_read, path)
                self._last = (key, data)
            except NotRegularFileError as error:
                data, not_regular = None, str(error)
            except ShortReadError:
                ctx.requeue_after(SETTLE_SECONDS)
                data = self._last[1] if self._last is not None else None
        else:
            ctx.requeue_after(SETTLE_SECONDS)
            data = self._last[1] if self._last is not None else None
        status = ConfigStatusSpec(
            path=str(path),
            present=data is not None or not_regular is not None,
            staged_promoted=self._promoted,
        )
        if not_regular is not None:
            status = status.model_copy(update={"errors": (not_regular,), "valid": False})
            if self._rejected is None or self._rejected[0] != not_regular:
                self._rejected = (not_regular, (not_regular,))
                ctx.logger.warning(
                    "machine config is invalid; keeping the volumes as they are", reason=not_regular
                )
        if data is not None:
            digest = hashlib.sha256(data).hexdigest()
            status = status.model_copy(update={"digest": digest})
            if self._rejected is not None and self._rejected[0] == digest:
                status = status.model_copy(update={"errors": self._rejected[1]})  # checked, and not changed
            elif self._applied is None or self._applied.digest != digest:
                # In a worker thread: validation is CPU-bound for up to seconds (bounded by volumed.config's
                # limits), and on the event loop it stalled the API and every controller.
                machine, issues = await anyio.to_thread.run_sync(check_config, data)
                if machine is None or issues:
                    errors = tuple(str(issue) for issue in issues)
                    self._rejected = (digest, errors)
                    status = status.model_copy(update={"errors": errors})
                    ctx.logger.warning(
                        "machine config is invalid; keeping the volumes as they are",
                        errors=len(issues),
                        reason=errors[0] if errors else "no config",  # issues never quote the file's text
                    )
                else:
                    self._rejected = None
                    # The legacy systemDiskEncryption blocks count: a config with only them is not empty.
                    self._applied = _Applied(
                        digest,
                        len(machine.labels),
                        desired_volumes(machine),
                        machine.not_supported_yet,
                        zswap_config(machine),
                    )
                    for line in machine.not_supported_yet:
                        ctx.logger.warning("config document not acted on", document=line)
                    ctx.logger.info(
                        "machine config applied",
                        documents=self._applied.documents,
                        volumes=len(self._applied.volumes),
                        digest=digest[:12],
                    )
            if self._applied is not None and self._applied.digest == digest:
                status = status.model_copy(update={"documents": self._applied.documents})
            status = status.model_copy(update={"valid": not status.errors})
        if self._applied is not None:
            status = status.model_copy(
                update={"applied_digest": self._applied.digest, "warnings": self._applied.not_supported_yet}
            )
            for volume in self._applied.volumes:  # secrets first: a config is never seen without its keys
                if volume.secrets is not None:
                    await ctx.apply(VolumeKeySecretsDefinition.new(volume.volume_id, volume.secrets))
                await ctx.apply(VolumeConfigDefinition.new(volume.volume_id, volume.config))
            if self._applied.zswap is not None:
                await ctx.apply(ZswapConfigDefinition.new(ZSWAP_ID, self._applied.zswap))
        await ctx.apply(ConfigStatusDefinition.new(CONFIG_STATUS_ID, status))

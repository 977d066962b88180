"""ConfigLoader: the machine config file -> VolumeConfig, VolumeKeySecrets and ConfigStatus resources."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from volumed.config import check_config, read_config_file
from volumed.resources import (
    BLOCK,
    CONFIG,
    CONFIG_STATUS_ID,
    ConfigStatusDefinition,
    ConfigStatusSpec,
    VolumeConfigDefinition,
    VolumeKeySecretsDefinition,
)
from volumed.runtime.controller import Controller, EventSource, Output, OutputKind

from ..sources import watch_files
from ._translate import DesiredVolume, desired_volumes

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime.controller import ControllerContext, Wake

STAGED_SUFFIX: Final = ".staged"


def staged_path(config_path: Path) -> Path:
    """Where `volumed apply-config --mode staged` leaves a config for the next start."""
    return config_path.with_name(config_path.name + STAGED_SUFFIX)


@dataclass(frozen=True)
class _Applied:
    digest: str
    documents: int
    volumes: tuple[DesiredVolume, ...]
    not_supported_yet: tuple[str, ...] = ()


def _read(path: Path) -> bytes | None:
    try:
        return read_config_file(path)  # at most one byte past the size limit: a huge file is not read whole
    except FileNotFoundError:
        return None


def _promote_staged(config_path: Path) -> bool:
    """Replace the config with a staged one (at start only, as Talos applies staged configs at boot)."""
    staged = staged_path(config_path)
    if not staged.exists():
        return False
    os.replace(staged, config_path)
    return True


class ConfigLoader(Controller):
    """Reads the config file given to `volumed run` and keeps the volume resources in line with it.

    The file is re-read when inotify says it (or its staged file) was written, replaced or removed, and
    every ``poll_interval`` seconds in any case (a fallback for changes inotify does not report: a writer
    that keeps the file open, a file system without inotify). A change is applied at once. An invalid new
    config is reported in ConfigStatus and changes nothing: the volumes of the last valid config stay as they
    are. With no config file at all nothing is produced (STATE then comes from META, see MetaStore).
    """

    name = "ConfigLoader"
    outputs = (
        Output(VolumeConfigDefinition.type, OutputKind.SHARED, BLOCK),
        Output(VolumeKeySecretsDefinition.type, OutputKind.SHARED, BLOCK),
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

    async def _watch(self, wake: Wake) -> None:
        """Wake on the config and its staged file being closed after writing, moved or deleted (never on a
        file still being written: that read would see half a config)."""
        path = self._path
        assert path is not None
        await watch_files(self._directory, (path.name, staged_path(path).name), wake)

    async def reconcile(self, ctx: ControllerContext) -> None:
        ctx.requeue_after(self._poll)
        if self._path is None:
            await ctx.apply(ConfigStatusDefinition.new(CONFIG_STATUS_ID, ConfigStatusSpec()))
            return
        path = self._path
        if not self._started:
            self._started = True
            self._promoted = await anyio.to_thread.run_sync(_promote_staged, path)
            if self._promoted:
                ctx.logger.info("promoted the staged config", path=str(path))
        data = await anyio.to_thread.run_sync(_read, path)
        status = ConfigStatusSpec(path=str(path), present=data is not None, staged_promoted=self._promoted)
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
                        digest, len(machine.labels), desired_volumes(machine), machine.not_supported_yet
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
        await ctx.apply(ConfigStatusDefinition.new(CONFIG_STATUS_ID, status))

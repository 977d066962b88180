"""The block controllers of a boot on one disk image, running on an in-memory state (fuse backend)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from volumed.controllers import DiscoveryController, KeyResolver, VolumeFormatter
from volumed.controllers.block._mounter import Mounter, MountRequester
from volumed.controllers.block._services import VolumeServices
from volumed.controllers.keys._providers import KeyEnvironment
from volumed.runtime.testing import run_runtime

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from volumed.runtime.controller import Runtime


@asynccontextmanager
async def volume_runtime(image: Path, workdir: Path) -> AsyncIterator[Runtime]:
    """Discovery, keys, the formatter (no retry timer within a test), the mounters; volumes closed after."""
    env = KeyEnvironment()
    services = VolumeServices(backend="fuse", root=workdir / "root", runtime_dir=workdir / "run")
    try:
        async with run_runtime(
            DiscoveryController([str(image)], interval=60.0),
            KeyResolver(env),
            VolumeFormatter(services, env, retry_interval=60.0),
            MountRequester(),
            Mounter(services),
        ) as runtime:
            yield runtime
    finally:
        await services.close_all()

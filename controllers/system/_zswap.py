"""Zswap: the machine config's ZswapConfig applied to the kernel, and zswap's counters as ZswapStatus."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio.to_thread

from volumed.resources import (
    BLOCK,
    ZSWAP_ID,
    ZswapConfigDefinition,
    ZswapConfigSpec,
    ZswapStatusDefinition,
    ZswapStatusSpec,
)
from volumed.runtime import Pointer
from volumed.runtime.controller import Controller, Input, Output

from ._zswap_originals import OriginalsError, load_originals, remove_originals, save_originals
from ._zswap_sysfs import (
    ibytes,
    parameter_path,
    parameter_values,
    read_counters,
    read_parameters,
    write_parameters,
)

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime.controller import ControllerContext

STATUS_INTERVAL: Final = 60.0
"""Talos polls the counters every minute: the kernel has no way to watch them."""


class ZswapController(Controller):
    """Enables zswap with the ZswapConfig's pool limit and shrinker setting, as Talos' ZswapConfigController
    (``enabled=Y``, ``max_pool_percent``, ``shrinker_enabled=Y|N`` under ``/sys/module/zswap/parameters``),
    and publishes the debugfs counters as ZswapStatus, as its ZswapStatusController.

    Without a ZswapConfig nothing is written: the kernel's own settings stay. When a ZswapConfig goes away,
    the values read before the first write are written back, as Talos' KernelParamSpecController restores a
    parameter's default once its spec is gone. They are saved in ``originals_file`` (in the state directory)
    before that first write and removed once written back, so a run started again without a reboot restores
    them too (it would read volumed's own values as the kernel's); a damaged file is warned about, never
    written to the kernel. A parameter this kernel lacks (``shrinker_enabled`` before
    Linux 6.8) is warned about once and left out; the others are written, as Talos writes each on its own. A
    write the kernel refuses (or a kernel without zswap) fails the reconcile with an error naming the file,
    after the other parameters were written; it is retried with backoff.
    """

    name = "Zswap"
    inputs = (Input(BLOCK, ZswapConfigDefinition.type, ZSWAP_ID),)
    outputs = (Output(ZswapStatusDefinition.type, namespace=BLOCK),)

    def __init__(
        self,
        *,
        sysfs_root: str = "/sys",
        debugfs_root: str = "/sys/kernel/debug",
        status_interval: float = STATUS_INTERVAL,
        originals_file: Path | None = None,
    ) -> None:
        self._sysfs = sysfs_root
        self._originals_file = originals_file
        self._saved_loaded = originals_file is None
        self._debugfs = debugfs_root
        self._interval = status_interval
        self._originals: dict[str, str] | None = None  # before our first write, to restore
        self._written: dict[str, str] | None = None
        self._missing_warned: set[str] = set()

    async def reconcile(self, ctx: ControllerContext) -> None:
        ctx.requeue_after(self._interval)
        config = await ctx.find(Pointer(BLOCK, ZswapConfigDefinition.type, ZSWAP_ID), ZswapConfigSpec)
        await self._load_saved(ctx)
        if config is not None:
            await self._apply(
                ctx, parameter_values(config.spec.max_pool_percent, config.spec.shrinker_enabled)
            )
        elif self._originals is not None:
            await anyio.to_thread.run_sync(write_parameters, self._sysfs, self._originals)
            if self._originals_file is not None:
                await anyio.to_thread.run_sync(remove_originals, self._originals_file)
            ctx.logger.info(
                "zswap settings restored: the config has no ZswapConfig any more", **self._originals
            )
            self._originals = self._written = None
        counters = await anyio.to_thread.run_sync(read_counters, self._debugfs)
        if counters is not None:
            total = counters.pop("pool_total_size")
            spec = ZswapStatusSpec.model_validate(
                {"total_size": total, "total_size_human": ibytes(total), **counters}
            )
            await ctx.apply(ZswapStatusDefinition.new(ZSWAP_ID, spec))

    async def _load_saved(self, ctx: ControllerContext) -> None:
        """Once per run: the values an earlier run saved before its first write (a restart without a
        reboot), which are the kernel's; the parameters now hold that run's."""
        if self._saved_loaded or self._originals_file is None:
            return
        try:
            saved = await anyio.to_thread.run_sync(load_originals, self._originals_file)
        except OriginalsError as error:
            ctx.logger.warning(
                "zswap: the settings saved before an earlier run's first write are unreadable; they are not"
                " written back (the file is removed)",
                error=str(error),
            )
            await anyio.to_thread.run_sync(remove_originals, self._originals_file)
            saved = None
        self._saved_loaded = True
        if saved is not None and self._originals is None:
            self._originals = saved
            ctx.logger.info(
                "zswap settings of an earlier run's to write back", file=str(self._originals_file)
            )

    async def _apply(self, ctx: ControllerContext, values: dict[str, str]) -> None:
        if values == self._written:
            return
        if self._originals is None:
            originals = await anyio.to_thread.run_sync(read_parameters, self._sysfs, tuple(values))
            if self._originals_file is not None:  # before the first write: a restart must find them
                await anyio.to_thread.run_sync(save_originals, self._originals_file, originals)
            self._originals = originals
        present = {name: value for name, value in values.items() if name in self._originals}
        for name in sorted(set(values) - set(present) - self._missing_warned):
            self._missing_warned.add(name)
            ctx.logger.warning(
                "zswap parameter missing from this kernel (shrinker_enabled came with Linux 6.8); it is left"
                " unset, the others are written",
                file=parameter_path(self._sysfs, name),
                wanted=values[name],
            )
        await anyio.to_thread.run_sync(write_parameters, self._sysfs, present)
        self._written = values
        ctx.logger.info("zswap enabled", **present)

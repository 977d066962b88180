"""SwapStatusController: a SwapStatus per line of ``/proc/swaps`` (Talos' ``block.SwapStatusController``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from volumed.resources import BLOCK, MountStatusDefinition, SwapStatusDefinition, SwapStatusSpec
from volumed.runtime.controller import Controller, Input, Output
from volumed.storage.filesystem import PROC_SWAPS, read_swaps

if TYPE_CHECKING:
    from volumed.runtime.controller import ControllerContext

#: Talos polls every minute: the kernel has no event for swap areas coming and going.
POLL_INTERVAL: Final = 60.0
_IEC: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def ibytes(size: int) -> str:
    """``size`` as go-humanize's ``IBytes`` writes it (Talos' ``sizeHuman``): ``64 MiB``, ``1.5 GiB``."""
    if size < 10:
        return f"{size} B"
    exponent = min(math.floor(math.log(size) / math.log(1024)), len(_IEC) - 1)
    value = math.floor(size / 1024**exponent * 10 + 0.5) / 10
    return f"{value:.1f} {_IEC[exponent]}" if value < 10 else f"{value:.0f} {_IEC[exponent]}"


class SwapStatusController(Controller):
    """Publishes every swap area the kernel uses, ours or not; re-read every minute and when a MountStatus
    changes (the swap volumes' activations publish one)."""

    name = "SwapStatus"
    inputs = (Input(BLOCK, MountStatusDefinition.type),)
    outputs = (Output(SwapStatusDefinition.type, namespace=BLOCK),)

    def __init__(self, *, proc_swaps: str = PROC_SWAPS, interval: float = POLL_INTERVAL) -> None:
        self._path = proc_swaps
        self._interval = interval

    async def reconcile(self, ctx: ControllerContext) -> None:
        ctx.requeue_after(self._interval)
        for entry in await anyio.to_thread.run_sync(read_swaps, self._path):
            spec = SwapStatusSpec(
                device=entry.device,
                type=entry.type,
                size=entry.size,
                size_human=ibytes(entry.size),
                used=entry.used,
                used_human=ibytes(entry.used),
                priority=entry.priority,
            )
            await ctx.apply(SwapStatusDefinition.new(entry.device, spec))

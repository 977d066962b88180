"""The machine config's ZswapConfig document -> the ZswapConfig resource the Zswap controller applies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.config import ZswapConfigDocument
from volumed.resources import ZswapConfigSpec

if TYPE_CHECKING:
    from volumed.config import MachineConfig


def zswap_config(machine: MachineConfig) -> ZswapConfigSpec | None:
    """The ZswapConfig with Talos' defaults (pool 20 %, no shrinker); None when the config has none (Talos
    allows one: a second is a duplicate document)."""
    document = next((other for other in machine.others if isinstance(other, ZswapConfigDocument)), None)
    if document is None:
        return None
    return ZswapConfigSpec(
        max_pool_percent=document.effective_max_pool_percent,
        shrinker_enabled=document.effective_shrinker_enabled,
    )

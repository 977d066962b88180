"""ZswapConfig and ZswapStatus: the kernel's compressed swap cache as the config sets it and as it runs."""

from __future__ import annotations

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import BLOCK, type_name

ZSWAP_ID = "zswap"


class ZswapConfigSpec(Spec):
    """The machine config's ``ZswapConfig`` with Talos' defaults filled in (id = ``zswap``).

    Present exactly while the config has a ZswapConfig document; zswap is then enabled. Without one the
    kernel's settings are left as they are (after a ZswapConfig goes away, as they were before it came).

    Attributes:
        max_pool_percent: ``maxPoolPercent`` (Talos' default 20): the share of RAM zswap's pool may use.
        shrinker_enabled: ``shrinkerEnabled`` (default false): the kernel may move cold pages on to swap.
    """

    max_pool_percent: int
    shrinker_enabled: bool


ZswapConfigDefinition: ResourceDefinition[ZswapConfigSpec] = ResourceDefinition(
    type=type_name("ZswapConfigs", BLOCK),
    spec_model=ZswapConfigSpec,
    default_namespace=BLOCK,
    aliases=("zswapconfig", "zswapconfigs"),
    print_columns=(
        PrintColumn("Max Pool Percent", "max_pool_percent"),
        PrintColumn("Shrinker", "shrinker_enabled"),
    ),
)


class ZswapStatusSpec(Spec):
    """What zswap's debugfs counters say (id = ``zswap``), as Talos' ZswapStatus.

    Published only while ``<debugfs>/zswap/pool_total_size`` is readable (zswap built in and debugfs mounted),
    refreshed every minute and after the ZswapConfig changes.

    Attributes:
        total_size: ``pool_total_size``, bytes of RAM the compressed pool takes.
        total_size_human: the same in IEC units, as go-humanize's IBytes writes it.
        stored_pages: ``stored_pages``, pages held compressed in the pool.
        pool_limit_hit: ``pool_limit_hit``, times the pool was full (``max_pool_percent`` reached).
        reject_reclaim_fail: ``reject_reclaim_fail``, stores refused because reclaim failed.
        reject_alloc_fail: ``reject_alloc_fail``, stores refused because the pool allocator failed.
        reject_kmemcache_fail: ``reject_kmemcache_fail``, stores refused because an entry allocation failed.
        reject_compress_fail: ``reject_compress_fail``, stores refused because compression failed.
        reject_compress_poor: ``reject_compress_poor``, stores refused because the page compressed poorly.
        written_back_pages: ``written_back_pages``, pages moved on to the swap device.
    """

    total_size: int = 0
    total_size_human: str = ""
    stored_pages: int = 0
    pool_limit_hit: int = 0
    reject_reclaim_fail: int = 0
    reject_alloc_fail: int = 0
    reject_kmemcache_fail: int = 0
    reject_compress_fail: int = 0
    reject_compress_poor: int = 0
    written_back_pages: int = 0


ZswapStatusDefinition: ResourceDefinition[ZswapStatusSpec] = ResourceDefinition(
    type=type_name("ZswapStatuses", BLOCK),
    spec_model=ZswapStatusSpec,
    default_namespace=BLOCK,
    aliases=("zswapstatus", "zswapstatuses"),
    print_columns=(
        PrintColumn("Total Size", "total_size_human"),
        PrintColumn("Stored Pages", "stored_pages"),
        PrintColumn("Written Back", "written_back_pages"),
        PrintColumn("Pool Limit Hit", "pool_limit_hit"),
    ),
)

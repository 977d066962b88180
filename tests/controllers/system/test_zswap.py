"""Zswap: a ZswapConfig is applied to zswap's module parameters as Talos' ZswapConfigController writes them
(``enabled=Y``, ``max_pool_percent``, ``shrinker_enabled=Y|N``), nothing is written without one, the kernel's
values come back when it goes away (Talos' KernelParamSpecController restores a parameter's default), and the
debugfs counters are published as ZswapStatus. Sysfs and debugfs are fake trees under tmp (issue 17)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest
from structlog.testing import capture_logs

from volumed.controllers import ConfigLoader, ZswapController
from volumed.controllers.system._zswap_sysfs import ZswapError, ibytes, write_parameters
from volumed.resources import (
    BLOCK,
    CONFIG,
    CONFIG_STATUS_ID,
    ZSWAP_ID,
    ConfigStatusDefinition,
    ZswapConfigDefinition,
    ZswapStatusDefinition,
)
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

EPHEMERAL = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n"
ZSWAP_FULL = (
    EPHEMERAL + "---\napiVersion: v1alpha1\nkind: ZswapConfig\nmaxPoolPercent: 50\nshrinkerEnabled: true\n"
)
ZSWAP_MIN = EPHEMERAL + "---\napiVersion: v1alpha1\nkind: ZswapConfig\n"
# The host kernel's values before any ZswapConfig (Debian's defaults).
KERNEL = {"enabled": "N\n", "max_pool_percent": "20\n", "shrinker_enabled": "N\n", "compressor": "lzo\n"}
STATUS = Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID)
ZSWAP_CONFIG = Pointer(BLOCK, ZswapConfigDefinition.type, ZSWAP_ID)
ZSWAP_STATUS = Pointer(BLOCK, ZswapStatusDefinition.type, ZSWAP_ID)


def fake_sysfs(root: Path, values: dict[str, str] = KERNEL) -> Path:
    parameters = root / "module" / "zswap" / "parameters"
    parameters.mkdir(parents=True)
    for name, value in values.items():
        (parameters / name).write_text(value)
    return parameters


def contents(parameters: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(parameters.iterdir())}


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(20):
        while not condition():  # noqa: ASYNC110 (files written by a worker thread: nothing to wait on)
            await anyio.sleep(0.01)


def controllers(config: Path, tmp_path: Path) -> tuple[ConfigLoader, ZswapController]:
    return (
        ConfigLoader(config, poll_interval=0.05),
        ZswapController(
            sysfs_root=str(tmp_path / "sys"), debugfs_root=str(tmp_path / "debug"), status_interval=0.05
        ),
    )


async def test_zswap_config_is_written_as_talos_does_and_not_warned_about(tmp_path: Path) -> None:
    parameters = fake_sysfs(tmp_path / "sys")
    config = tmp_path / "config.yaml"
    config.write_text(ZSWAP_FULL)
    async with run_runtime(*controllers(config, tmp_path)) as runtime:
        status = await assert_resource(runtime.state, STATUS, lambda r: r.spec.valid)
        assert status.spec.warnings == ()  # it said "ZswapConfig: accepted but not acted on"
        zswap = await assert_resource(runtime.state, ZSWAP_CONFIG)
        assert (zswap.spec.max_pool_percent, zswap.spec.shrinker_enabled) == (50, True)
        await until(lambda: (parameters / "enabled").read_text() == "Y")
        await until(lambda: (parameters / "shrinker_enabled").read_text() == "Y")
    # The compressor is not Talos' business: untouched.
    assert contents(parameters) == {
        "compressor": "lzo\n",
        "enabled": "Y",
        "max_pool_percent": "50",
        "shrinker_enabled": "Y",
    }


async def test_talos_defaults_pool_20_percent_and_no_shrinker(tmp_path: Path) -> None:
    parameters = fake_sysfs(
        tmp_path / "sys", {"enabled": "N\n", "max_pool_percent": "35\n", "shrinker_enabled": "Y\n"}
    )
    config = tmp_path / "config.yaml"
    config.write_text(ZSWAP_MIN)
    async with run_runtime(*controllers(config, tmp_path)):
        await until(lambda: (parameters / "shrinker_enabled").read_text() == "N")
    assert contents(parameters) == {"enabled": "Y", "max_pool_percent": "20", "shrinker_enabled": "N"}


async def test_without_zswap_config_nothing_is_written(tmp_path: Path) -> None:
    parameters = fake_sysfs(tmp_path / "sys")
    for path in parameters.iterdir():
        path.chmod(0o444)  # root writes anyway: the check below is on contents and mtimes
    before = {path.name: path.stat().st_mtime_ns for path in parameters.iterdir()}
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL)
    async with run_runtime(*controllers(config, tmp_path)) as runtime:
        await assert_resource(runtime.state, STATUS, lambda r: r.spec.valid)
        seen = runtime.stats()["Zswap"].reconciles_ended
        await until(lambda: runtime.stats()["Zswap"].reconciles_ended >= seen + 2)
        await assert_no_resource(runtime.state, ZSWAP_CONFIG)
        assert runtime.stats()["Zswap"].errors == 0
    assert contents(parameters) == KERNEL
    assert {path.name: path.stat().st_mtime_ns for path in parameters.iterdir()} == before


async def test_the_kernel_values_come_back_when_the_zswap_config_goes(tmp_path: Path) -> None:
    parameters = fake_sysfs(tmp_path / "sys")
    config = tmp_path / "config.yaml"
    config.write_text(ZSWAP_FULL)
    async with run_runtime(*controllers(config, tmp_path)) as runtime:
        await until(lambda: (parameters / "shrinker_enabled").read_text() == "Y")
        config.write_text(ZSWAP_MIN)  # changed: written again, the originals kept from before the first write
        # both at once: a regular file (unlike sysfs) is empty between the write's truncate and its data
        await until(
            lambda: (
                (parameters / "max_pool_percent").read_text() == "20"
                and (parameters / "shrinker_enabled").read_text() == "N"
            )
        )
        config.write_text(EPHEMERAL)
        await assert_no_resource(runtime.state, ZSWAP_CONFIG)
        await until(lambda: (parameters / "enabled").read_text() == "N")
    assert contents(parameters) == {
        "compressor": "lzo\n",
        "enabled": "N",
        "max_pool_percent": "20",
        "shrinker_enabled": "N",
    }


async def test_a_kernel_without_shrinker_enabled_gets_the_others_and_one_warning(tmp_path: Path) -> None:
    """Linux before 6.8 has no ``shrinker_enabled``: zswap is still enabled with its pool limit (Talos writes
    each parameter as its own KernelParamSpec), the missing file is warned about once, by name, and never
    created; the reconcile does not fail. When the ZswapConfig goes, the two are restored (review22 F7)."""
    parameters = fake_sysfs(tmp_path / "sys", {"enabled": "N\n", "max_pool_percent": "20\n"})
    config = tmp_path / "config.yaml"
    config.write_text(ZSWAP_FULL)
    with capture_logs() as logs:
        async with run_runtime(*controllers(config, tmp_path)) as runtime:
            await until(
                lambda: (
                    (parameters / "enabled").read_text() == "Y"
                    and (parameters / "max_pool_percent").read_text() == "50"
                )
            )
            seen = runtime.stats()["Zswap"].reconciles_ended
            await until(lambda: runtime.stats()["Zswap"].reconciles_ended >= seen + 3)
            assert runtime.stats()["Zswap"].errors == 0
            config.write_text(EPHEMERAL)
            await until(lambda: (parameters / "enabled").read_text() == "N")
    assert contents(parameters) == {"enabled": "N", "max_pool_percent": "20"}
    warnings = [r for r in logs if r["log_level"] == "warning" and "zswap" in r["event"]]
    assert len(warnings) == 1, warnings
    assert warnings[0]["file"] == str(parameters / "shrinker_enabled")


async def test_a_refused_write_fails_naming_the_file(tmp_path: Path) -> None:
    parameters = fake_sysfs(tmp_path / "sys", {"enabled": "N\n", "shrinker_enabled": "N\n"})
    # A parameter the kernel will not let us write (a read-only sysctl: EACCES even for root).
    (parameters / "max_pool_percent").symlink_to("/proc/sys/kernel/ostype")
    config = tmp_path / "config.yaml"
    config.write_text(ZSWAP_FULL)
    with capture_logs() as logs:
        async with run_runtime(*controllers(config, tmp_path)) as runtime:
            await until(lambda: runtime.stats()["Zswap"].errors >= 1)
    failures = [
        r for r in logs if r["event"] == "reconcile failed" and r.get("controller", "Zswap") == "Zswap"
    ]
    assert failures
    assert (
        f"cannot write '50' to {parameters / 'max_pool_percent'}: Permission denied" in failures[0]["error"]
    )
    # the refused one stops none of the others (Talos writes each as its own kernel parameter)
    assert (parameters / "enabled").read_text() == "Y"
    assert (parameters / "shrinker_enabled").read_text() == "Y"


def test_a_kernel_without_zswap_is_an_error_naming_the_parameter_file(tmp_path: Path) -> None:
    (tmp_path / "module").mkdir()
    with pytest.raises(
        ZswapError, match=r"cannot write 'Y' to .*/module/zswap/parameters/enabled: No such file"
    ):
        write_parameters(str(tmp_path), {"enabled": "Y"})
    assert not (tmp_path / "module" / "zswap").exists()  # never created


COUNTERS = {
    "pool_total_size": "123456789",
    "stored_pages": "4000",
    "pool_limit_hit": "1",
    "reject_reclaim_fail": "2",
    "reject_alloc_fail": "3",
    "reject_kmemcache_fail": "4",
    "reject_compress_fail": "5",
    "reject_compress_poor": "6",
    "written_back_pages": "7",
    "decompress_fail": "8",  # newer kernels' counters Talos does not read
}


async def test_the_debugfs_counters_are_published_as_zswap_status(tmp_path: Path) -> None:
    fake_sysfs(tmp_path / "sys")
    status_dir = tmp_path / "debug" / "zswap"
    status_dir.mkdir(parents=True)
    for name, value in COUNTERS.items():
        (status_dir / name).write_text(value + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL)
    async with run_runtime(*controllers(config, tmp_path)) as runtime:
        status = await assert_resource(runtime.state, ZSWAP_STATUS)
    assert status.spec.model_dump() == {
        "total_size": 123456789,
        "total_size_human": "118 MiB",  # 123456789 / 2**20 = 117.74 -> 117.7 -> "%.0f" -> 118
        "stored_pages": 4000,
        "pool_limit_hit": 1,
        "reject_reclaim_fail": 2,
        "reject_alloc_fail": 3,
        "reject_kmemcache_fail": 4,
        "reject_compress_fail": 5,
        "reject_compress_poor": 6,
        "written_back_pages": 7,
    }


async def test_no_zswap_status_without_debugfs(tmp_path: Path) -> None:
    fake_sysfs(tmp_path / "sys")
    config = tmp_path / "config.yaml"
    config.write_text(ZSWAP_MIN)
    async with run_runtime(*controllers(config, tmp_path)) as runtime:
        await until(lambda: runtime.stats()["Zswap"].reconciles_ended >= 3)
        await assert_no_resource(runtime.state, ZSWAP_STATUS)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (9, "9 B"),
        (10, "10 B"),  # 10 >= 10: no decimal
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (10 * 1024, "10 KiB"),
        (1048575, "1024 KiB"),  # 1023.999 KiB rounds up to 1024.0, still KiB
        (3 * 2**30 + 2**29, "3.5 GiB"),
    ],
)
def test_total_size_human_is_go_humanize_ibytes(size: int, text: str) -> None:
    assert ibytes(size) == text

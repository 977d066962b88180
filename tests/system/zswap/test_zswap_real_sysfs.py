"""The Zswap controller on this host's real ``/sys/module/zswap/parameters``: a ZswapConfig enables zswap
with its settings and removing it writes the kernel's own values back. The test restores every parameter it
may have changed, whatever happens (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from tests._tools import require_root
from volumed.controllers import ConfigLoader, ZswapController
from volumed.resources import BLOCK, ZSWAP_ID, ZswapConfigDefinition
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PARAMETERS = Path("/sys/module/zswap/parameters")
NAMES = ("enabled", "max_pool_percent", "shrinker_enabled")
EPHEMERAL = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n"


def read() -> dict[str, str]:
    return {name: (PARAMETERS / name).read_text().strip() for name in NAMES}


@pytest.fixture
def host_values() -> Iterator[dict[str, str]]:
    require_root()
    if not PARAMETERS.is_dir():
        pytest.fail("this kernel has no zswap (/sys/module/zswap/parameters is missing): the test needs one")
    saved = read()
    try:
        yield saved
    finally:
        for name, value in saved.items():
            (PARAMETERS / name).write_text(value)
        assert read() == saved


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(20):
        while not condition():  # noqa: ASYNC110 (sysfs written by a worker thread: nothing to wait on)
            await anyio.sleep(0.01)


async def test_zswap_config_on_the_real_sysfs_and_back(tmp_path: Path, host_values: dict[str, str]) -> None:
    # Values that differ from the host's, so each write is seen.
    percent = "37" if host_values["max_pool_percent"] != "37" else "38"
    shrinker = "N" if host_values["shrinker_enabled"] == "Y" else "Y"
    config = tmp_path / "config.yaml"
    config.write_text(
        EPHEMERAL + "---\napiVersion: v1alpha1\nkind: ZswapConfig\n"
        f"maxPoolPercent: {percent}\nshrinkerEnabled: {'true' if shrinker == 'Y' else 'false'}\n"
    )
    zswap = Pointer(BLOCK, ZswapConfigDefinition.type, ZSWAP_ID)
    async with run_runtime(
        ConfigLoader(config, poll_interval=0.05),
        ZswapController(debugfs_root=str(tmp_path / "no-debugfs"), status_interval=0.05),
    ) as runtime:
        await assert_resource(runtime.state, zswap)
        await until(
            lambda: read() == {"enabled": "Y", "max_pool_percent": percent, "shrinker_enabled": shrinker}
        )
        config.write_text(EPHEMERAL)
        await assert_no_resource(runtime.state, zswap)
        await until(lambda: read() == host_values)
        assert runtime.stats()["Zswap"].errors == 0

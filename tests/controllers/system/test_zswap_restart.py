"""Zswap across a restart without a reboot (review30 F5): the values read before volumed's first write are
kept in its state directory, so a run started again with the ZswapConfig still there (a new controller, as a
restart makes) writes the kernel's values back when the document goes, not volumed's own ones; the file is
removed once they are written back. Sysfs is a fake tree under tmp, as in test_zswap.py."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.controllers.system.test_zswap import EPHEMERAL, KERNEL, ZSWAP_FULL, contents, fake_sysfs, until
from volumed.controllers import ConfigLoader, ZswapController
from volumed.runtime.testing import run_runtime

if TYPE_CHECKING:
    from pathlib import Path

APPLIED = {"compressor": "lzo\n", "enabled": "Y", "max_pool_percent": "50", "shrinker_enabled": "Y"}
RESTORED = {"compressor": "lzo\n", "enabled": "N", "max_pool_percent": "20", "shrinker_enabled": "N"}


def controllers(config: Path, tmp_path: Path) -> tuple[ConfigLoader, ZswapController]:
    """What one `volumed run` registers, with its state directory ``tmp_path / "run"``."""
    return (
        ConfigLoader(config, poll_interval=0.05),
        ZswapController(
            sysfs_root=str(tmp_path / "sys"),
            debugfs_root=str(tmp_path / "debug"),
            status_interval=0.05,
            originals_file=tmp_path / "run" / "zswap-originals.json",
        ),
    )


async def test_the_kernel_values_come_back_after_a_restart(tmp_path: Path) -> None:
    parameters = fake_sysfs(tmp_path / "sys")
    (tmp_path / "run").mkdir()
    saved = tmp_path / "run" / "zswap-originals.json"
    config = tmp_path / "config.yaml"
    config.write_text(ZSWAP_FULL)
    async with run_runtime(*controllers(config, tmp_path)):
        await until(lambda: contents(parameters) == APPLIED)
    assert json.loads(saved.read_text()) == {n: v.strip() for n, v in KERNEL.items() if n != "compressor"}
    async with run_runtime(*controllers(config, tmp_path)):  # started again, the document still there
        await until(lambda: contents(parameters) == APPLIED)
        config.write_text(EPHEMERAL)  # the ZswapConfig removed
        await until(lambda: contents(parameters) == RESTORED)  # they stayed Y/50/Y
        await until(lambda: not saved.exists())
    async with run_runtime(*controllers(config, tmp_path)):  # nothing to write back any more
        config.write_text(ZSWAP_FULL)
        await until(lambda: contents(parameters) == APPLIED)
        assert json.loads(saved.read_text())["max_pool_percent"] == "20"


async def test_unreadable_saved_values_are_not_written(tmp_path: Path) -> None:
    """A damaged file is not written to the kernel (and not trusted): the kernel's values are read afresh."""
    parameters = fake_sysfs(tmp_path / "sys")
    (tmp_path / "run").mkdir()
    saved = tmp_path / "run" / "zswap-originals.json"
    saved.write_text('{"enabled": "N", "max_pool_percent": 7')
    config = tmp_path / "config.yaml"
    config.write_text(ZSWAP_FULL)
    async with run_runtime(*controllers(config, tmp_path)):
        await until(lambda: contents(parameters) == APPLIED)
        config.write_text(EPHEMERAL)
        await until(lambda: contents(parameters) == RESTORED)

"""The saved zswap originals file is not trusted as written (review32 F4): its names became file names under
the parameters directory (``../`` wrote any existing file outside it) and a non-ASCII value failed every
reconcile with a traceback. Only the parameters volumed writes, with short printable ASCII values, are taken;
anything else is warned about once and the file ignored: the kernel's values are read afresh. Sysfs is a fake
tree under tmp, as in test_zswap.py."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from tests.controllers.system.test_zswap import EPHEMERAL, ZSWAP_FULL, contents, fake_sysfs, until
from tests.controllers.system.test_zswap_restart import APPLIED, RESTORED, controllers
from volumed.controllers.system._zswap_originals import OriginalsError, load_originals
from volumed.runtime.testing import run_runtime

if TYPE_CHECKING:
    from pathlib import Path

VICTIM = "VICTIM"


@pytest.mark.parametrize(
    "saved",
    [
        {"../../../../../../../../VICTIM": "pwned", "enabled": "N"},
        {"enabled": "\u0178", "max_pool_percent": "20", "shrinker_enabled": "N"},
        {"enabled": "N\nY", "max_pool_percent": "20"},
        {"enabled": "N", "max_pool_percent": "2" * 100},
    ],
    ids=["traversal", "non-ascii", "newline", "long"],
)
async def test_saved_values_other_than_zswaps_own_are_ignored(tmp_path: Path, saved: dict[str, str]) -> None:
    parameters = fake_sysfs(tmp_path / "sys")
    (tmp_path / "run").mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("not a zswap parameter\n")
    file = tmp_path / "run" / "zswap-originals.json"
    file.write_text(json.dumps(saved).replace(VICTIM, str(victim)))
    config = tmp_path / "config.yaml"
    config.write_text(ZSWAP_FULL)
    with capture_logs() as logs:
        async with run_runtime(*controllers(config, tmp_path)):
            await until(lambda: contents(parameters) == APPLIED)
            config.write_text(EPHEMERAL)
            await until(lambda: contents(parameters) == RESTORED)  # the kernel's, read afresh
    assert victim.read_text() == "not a zswap parameter\n"
    warnings = [r for r in logs if r["log_level"] == "warning"]
    assert len(warnings) == 1, warnings
    assert "zswap" in warnings[0]["event"]
    assert str(file) in warnings[0]["error"]


def test_zswaps_own_values_are_taken(tmp_path: Path) -> None:
    file = tmp_path / "zswap-originals.json"
    file.write_text(json.dumps({"enabled": "N", "max_pool_percent": "20", "shrinker_enabled": "N"}))
    assert load_originals(file) == {"enabled": "N", "max_pool_percent": "20", "shrinker_enabled": "N"}
    file.write_text(json.dumps({"compressor": "lzo"}))  # not one volumed writes
    with pytest.raises(OriginalsError, match="compressor"):
        load_originals(file)

"""A grow edits its disk's partition table only while it holds the table lock that provisioning holds (review
of issue 12: two grows on one disk, or a grow and a new partition, read-changed-wrote the same table at once
and the later write dropped the other's partition growth; the next new partition then overwrote the grown
volume's data)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from tests.system.lifecycle.test_grow_volume import MIB, _make_volume, _sfdisk_sizes, open_through_services
from volumed.controllers.block._grow import grow_opened_volume
from volumed.controllers.block._services import VolumeServices
from volumed.resources import ProvisioningConfigSpec, VolumeConfigSpec

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.system


def test_a_grow_waits_for_the_table_lock(tmp_path: Path) -> None:
    image, runtime_dir, _ = _make_volume(tmp_path, "xfs")
    with image.open("r+b") as f:
        f.truncate(96 * MIB)
    services = VolumeServices(backend="fuse", root=tmp_path, runtime_dir=runtime_dir)
    config = VolumeConfigSpec(
        partition_label="EPHEMERAL", provisioning=ProvisioningConfigSpec(grow=True), filesystem="xfs"
    )
    seen: dict[str, int] = {}

    async def main() -> None:
        try:
            status = await open_through_services(services, image)
            done = anyio.Event()

            async def grow() -> None:
                await grow_opened_volume(services, "EPHEMERAL", config, status)
                done.set()

            async with anyio.create_task_group() as tg:
                await services.provisioning_lock.acquire()  # another table edit in progress
                tg.start_soon(grow)
                await anyio.sleep(1.0)
                seen["while_locked"] = _sfdisk_sizes(image)["EPHEMERAL"]
                assert not done.is_set()
                services.provisioning_lock.release()
                with anyio.fail_after(60):
                    await done.wait()
            seen["after"] = _sfdisk_sizes(image)["EPHEMERAL"]
        finally:
            await services.close_all()

    anyio.run(main)
    assert seen == {"while_locked": 45 * MIB, "after": 93 * MIB}

"""Discovery publishes a disk's volumes before the disk itself.

Why it matters: the VolumeFormatter reports a volume ``missing`` when disks are known but no discovered volume
carries its label, and `volumed run --once` stops at ``missing``. With disks published first, a formatter
pass between the Disk and its DiscoveredVolumes reported STATE and EPHEMERAL missing on a fresh boot (seen in
about one boot in five in the lifecycle system tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from volumed.controllers import DiscoveryController
from volumed.controllers.block._discovery import image_disk_id
from volumed.resources import BLOCK, DiscoveredVolumeDefinition, DiskDefinition
from volumed.runtime import Pointer, in_memory_state
from volumed.runtime.testing import assert_resource, run_runtime
from volumed.storage import disklayout

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


async def test_volumes_are_published_before_their_disk(tmp_path: Path) -> None:
    image = tmp_path / "node.img"
    disklayout.create_disk_image(str(image), 256 * MIB, state_size=64 * MIB)
    state = in_memory_state()
    created: list[str] = []
    create = state.create

    async def recording_create(resource: Any, *, owner: str | None = None) -> Any:
        created.append(resource.metadata.pointer.type)
        return await create(resource, owner=owner)

    state.create = recording_create  # type: ignore[method-assign]
    async with run_runtime(DiscoveryController([str(image)], interval=60.0), state=state):
        await assert_resource(state, Pointer(BLOCK, DiskDefinition.type, image_disk_id(str(image))))

    volume_type, disk_type = DiscoveredVolumeDefinition.type, DiskDefinition.type
    assert created.count(volume_type) == 3  # META, STATE, EPHEMERAL
    assert created.count(disk_type) == 1
    assert created.index(disk_type) > max(i for i, t in enumerate(created) if t == volume_type)

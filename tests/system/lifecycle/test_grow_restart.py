"""volumed restarted without a reboot after a grow cut short between the partition and the mapping step.

The FUSE server (or dm mapping) of the first run is still active at the old size while the partition, and so
the dynamic LUKS2 segment, grew. The next activation grew that mapping instead of failing the volume with
"already active" (review of the grow step: ActivationConflictError until then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from tests.system.lifecycle.test_grow_volume import (
    DATA_OFFSET,
    MIB,
    NAME,
    NUMBER,
    PASSPHRASE,
    _device_size,
    _make_volume,
    _sfdisk_sizes,
    _shutdown,
    crash_during_boot,
)
from volumed.controllers.block._encryption import Location
from volumed.controllers.block._services import VolumeServices
from volumed.storage.activation import FuseActivator
from volumed.storage.gpt import read_partition_table
from volumed.storage.luks2 import Luks2Volume

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.system


def test_a_mapping_left_smaller_by_a_cut_grow_is_grown_when_activated_again(tmp_path: Path) -> None:
    image, runtime_dir, _ = _make_volume(tmp_path, "xfs")
    try:
        with image.open("r+b") as f:
            f.truncate(96 * MIB)
        crash_during_boot(image, runtime_dir, "partition")
        assert _sfdisk_sizes(image)["EPHEMERAL"] == 93 * MIB
        assert FuseActivator(runtime_dir=runtime_dir).status(NAME).size == 45 * MIB - DATA_OFFSET
        part = read_partition_table(image).partition(NUMBER)
        location = Location(str(image), part.offset(512), part.size(512))
        with Luks2Volume.open(image, offset=location.offset, size=location.size) as volume:
            key = volume.unlock(PASSPHRASE)
        services = VolumeServices(backend="fuse", root=tmp_path, runtime_dir=runtime_dir)

        async def restart() -> str:
            return await services.activate("EPHEMERAL", location, key)

        device = anyio.run(restart)
        assert _device_size(device) == 93 * MIB - DATA_OFFSET
    finally:
        _shutdown(runtime_dir)

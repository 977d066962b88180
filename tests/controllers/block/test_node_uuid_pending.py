"""A nodeID volume waits while the node UUID is not decided (META not read yet), and fails only once there is
definitely none.

Before, the VolumeFormatter took "no SystemInformation yet" for "no node UUID": the volume failed (retryably)
until META was read, and `volumed run --once` could end there with exit 6 on a first boot whose UUID is in
META.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.cli._run_loop import once_exit_code
from volumed.controllers import DiscoveryController, KeyResolver, VolumeFormatter, convergence
from volumed.controllers.block._services import VolumeServices
from volumed.controllers.keys._providers import KeyEnvironment
from volumed.resources import (
    BLOCK,
    SYSTEM_INFORMATION_ID,
    EncryptionConfigSpec,
    KeyKind,
    KeySlotSpec,
    PbkdfSpec,
    SystemInformationDefinition,
    SystemInformationSpec,
    UUIDSource,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumePhase,
    VolumeStatusDefinition,
)
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource, run_runtime
from volumed.storage import disklayout

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
STATUS = Pointer(BLOCK, VolumeStatusDefinition.type, "STATE")
STATE_NODEID = VolumeConfigSpec(
    partition_label="STATE",
    encryption=EncryptionConfigSpec(
        keys=(KeySlotSpec(slot=0, kind=KeyKind.NODE_ID),), pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000)
    ),
)


async def test_nodeid_volume_waits_for_the_uuid_until_meta_was_read(tmp_path: Path) -> None:
    image = tmp_path / "node.img"
    table = disklayout.create_disk_image(image, 256 * MIB, state_size=64 * MIB)
    state_part = table.find("STATE")
    assert state_part is not None
    env = KeyEnvironment()
    services = VolumeServices(backend="fuse", root=tmp_path / "root", runtime_dir=tmp_path / "run")
    async with run_runtime(
        DiscoveryController([str(image)], interval=0.05),
        KeyResolver(env),
        VolumeFormatter(services, env, retry_interval=0.05),
    ) as runtime:
        state = runtime.state
        await state.create(VolumeConfigDefinition.new("STATE", STATE_NODEID), owner="test")
        # No MetaStore, no SystemInformation: the moment before META is read, held for good.
        status = await assert_resource(
            state,
            STATUS,
            lambda r: r.spec.phase == VolumePhase.FAILED or "node UUID" in r.spec.error_message,
        )
        assert (status.spec.phase, status.spec.error_message) == (
            VolumePhase.WAITING,
            "waiting for the node UUID (META not read yet)",
        )
        snapshot = await convergence(state)
        assert not snapshot.settled  # `--once` does not stop here
        assert "STATE" not in snapshot.blocked
        with image.open("rb") as f:  # nothing was written to STATE's partition
            f.seek(state_part.offset(table.sector_size))
            assert f.read(MIB) == bytes(MIB)

        # META read, no tag 0x0f, no SMBIOS UUID: definitely none, the volume fails and `--once` ends (6)
        none = SystemInformationSpec(uuid="", source=UUIDSource.NONE)
        await state.create(SystemInformationDefinition.new(SYSTEM_INFORMATION_ID, none), owner="test")
        status = await assert_resource(state, STATUS, lambda r: r.spec.phase == VolumePhase.FAILED)
        assert "slot 0 (nodeID): machine UUID is not populated" in status.spec.error_message
        snapshot = await convergence(state)
        assert snapshot.settled
        assert once_exit_code(snapshot) == 6

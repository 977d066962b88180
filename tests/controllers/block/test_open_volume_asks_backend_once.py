"""A pass over an open encrypted volume asks the activation backend for the mapping's status once (issue 16).

Before, every VolumeFormatter pass asked twice: whether the mapping was active, then which flags it runs
without. On the fuse backend each question looks the volume's loop devices up; a boot makes several passes
per volume. The flags the mapping runs without are read once, when it is made, and still reach the
VolumeStatus of every later pass.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from tests.controllers.block._volume_runtime import volume_runtime
from volumed.controllers.block._formatter import VolumeFormatter
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
from volumed.runtime.testing import assert_resource
from volumed.storage import disklayout
from volumed.storage.activation import FuseActivator

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from volumed.storage.activation import ActivationStatus

MIB = 1024 * 1024
WAIT = 60.0
NODE = "5ba2b8a4-3c1e-4f43-9d2f-8a1b7c6d5e4f"
ENCRYPTED = EncryptionConfigSpec(
    keys=(KeySlotSpec(slot=0, kind=KeyKind.NODE_ID),),
    pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000),
    perf_options=("no_read_workqueue",),
)


async def test_a_later_pass_asks_once_and_keeps_the_ignored_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = tmp_path / "node.img"
    disklayout.create_disk_image(image, 256 * MIB, state_size=64 * MIB)
    asked: Counter[str] = Counter()
    status = FuseActivator.status

    def counted_status(self: FuseActivator, name: str) -> ActivationStatus:
        asked[name] += 1
        return status(self, name)

    prepare = VolumeFormatter._prepare_encrypted

    async def counted_prepare(self: VolumeFormatter, item: Any, *args: Any) -> Any:
        asked[f"pass {item.volume_id}"] += 1
        return await prepare(self, item, *args)

    monkeypatch.setattr(FuseActivator, "status", counted_status)
    monkeypatch.setattr(VolumeFormatter, "_prepare_encrypted", counted_prepare)
    async with volume_runtime(image, tmp_path) as runtime:
        state = runtime.state
        info = SystemInformationSpec(uuid=NODE, source=UUIDSource.SMBIOS)
        await state.create(SystemInformationDefinition.new(SYSTEM_INFORMATION_ID, info), owner="test")
        config = VolumeConfigSpec(partition_label="STATE", filesystem="ext4", encryption=ENCRYPTED)
        await state.create(VolumeConfigDefinition.new("STATE", config), owner="test")
        pointer = Pointer(BLOCK, VolumeStatusDefinition.type, "STATE")
        ready = await assert_resource(
            state, pointer, lambda r: r.spec.phase == VolumePhase.READY, within=WAIT
        )
        assert ready.spec.encryption_ignored_options == ("no_read_workqueue",)

        # a new volume makes the formatter pass over STATE again, open already
        before = asked.copy()
        other = VolumeConfigSpec(partition_label="EPHEMERAL", filesystem="ext4")
        await state.create(VolumeConfigDefinition.new("EPHEMERAL", other), owner="test")
        await assert_resource(
            state,
            Pointer(BLOCK, VolumeStatusDefinition.type, "EPHEMERAL"),
            lambda r: r.spec.phase == VolumePhase.READY,
            within=WAIT,
        )
        again = await state.get(pointer)
        assert again.spec.phase == VolumePhase.READY
        assert again.spec.encryption_ignored_options == ("no_read_workqueue",)
        passes = asked["pass STATE"] - before["pass STATE"]
        assert passes >= 1  # STATE was looked at again
        assert asked["luks2-STATE"] - before["luks2-STATE"] == passes  # was twice as many

"""The node UUID is published only once decided: META read (or found on no disk) and SMBIOS looked at.

Before, SystemInformation published SMBIOS's UUID (or nothing, read as "no node UUID") before META was read:
a nodeID volume failed for a moment, or was bound to SMBIOS's UUID while META's tag 0x0f overrides it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from volumed.controllers import DiscoveryController, MetaStore, SystemInformationController
from volumed.resources import (
    META_LOADED_ID,
    SYSTEM,
    SYSTEM_INFORMATION_ID,
    MetaLoadedDefinition,
    SystemInformationDefinition,
    UUIDSource,
)
from volumed.runtime import Kind, Pointer, in_memory_state
from volumed.runtime.testing import assert_resource, run_runtime
from volumed.storage import disklayout
from volumed.storage.meta import MetaPartition, write_uuid_override

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime import State
    from volumed.runtime.controller import Controller

MIB = 1024 * 1024
SMBIOS_UUID = "4c4c4544-0030-3510-8052-b4c04f4e4332"
META_UUID = "11111111-2222-3333-4444-555555555555"
INFO = Pointer(SYSTEM, SystemInformationDefinition.type, SYSTEM_INFORMATION_ID)
LOADED = Pointer(SYSTEM, MetaLoadedDefinition.type, META_LOADED_ID)


def node_image(path: Path) -> MetaPartition:
    table = disklayout.create_disk_image(path, 256 * MIB, state_size=64 * MIB)
    meta = table.find("META")
    assert meta is not None
    return MetaPartition(path, offset=meta.offset(table.sector_size))


def controllers(image: Path, dmi: Path) -> list[Controller]:
    return [
        DiscoveryController([str(image)], interval=0.05),
        MetaStore(poll_interval=0.05),
        SystemInformationController(dmi_path=str(dmi)),
    ]


def record(state: State) -> list[tuple[str, str]]:
    """Every SystemInformation written from now on, as (uuid, source)."""
    seen: list[tuple[str, str]] = []

    def listener(event: Any) -> None:
        if event.resource is not None:
            seen.append((event.resource.spec.uuid, event.resource.spec.source.value))

    state.listen(Kind(SYSTEM, SystemInformationDefinition.type), listener)
    return seen


async def test_smbios_uuid_is_never_published_while_meta_may_override_it(tmp_path: Path) -> None:
    image = tmp_path / "node.img"
    write_uuid_override(node_image(image), META_UUID)
    dmi = tmp_path / "product_uuid"
    dmi.write_text(f"{SMBIOS_UUID}\n")
    state = in_memory_state()
    seen = record(state)
    async with run_runtime(*controllers(image, dmi), state=state):
        await assert_resource(state, INFO, lambda r: r.spec.source == UUIDSource.META)
    assert seen == [(META_UUID, "meta")]


async def test_smbios_uuid_once_meta_is_read_without_tag_0x0f(tmp_path: Path) -> None:
    image = tmp_path / "node.img"
    node_image(image)
    dmi = tmp_path / "product_uuid"
    dmi.write_text(f"{SMBIOS_UUID}\n")
    state = in_memory_state()
    seen = record(state)
    async with run_runtime(*controllers(image, dmi), state=state):
        await assert_resource(state, INFO)
        loaded = await assert_resource(state, LOADED)
        assert (loaded.spec.found, loaded.spec.error) == (True, "")
    assert seen == [(SMBIOS_UUID, "smbios")]


async def test_a_node_without_meta_or_smbios_has_definitely_no_uuid(tmp_path: Path) -> None:
    """No META on any disk (a blank disk), no SMBIOS UUID: "none" is published, so keys fail, not wait."""
    image = tmp_path / "blank.img"
    with image.open("wb") as f:
        f.truncate(64 * MIB)
    state = in_memory_state()
    seen = record(state)
    async with run_runtime(*controllers(image, tmp_path / "no-dmi"), state=state):
        info = await assert_resource(state, INFO)
        assert (info.spec.uuid, info.spec.source) == ("", UUIDSource.NONE)
        loaded = await assert_resource(state, LOADED)
        assert (loaded.spec.found, loaded.spec.error) == (False, "")
    assert seen == [("", "none")]


async def test_corrupt_meta_is_looked_at_and_smbios_decides(tmp_path: Path) -> None:
    """Both copies of META damaged: its tags are unknown, taken as unset, and the reason is published."""
    image = tmp_path / "node.img"
    meta = node_image(image)
    write_uuid_override(meta, META_UUID)
    with image.open("r+b") as f:  # both 256 KiB copies
        f.seek(meta.offset)
        f.write(b"\xff" * (512 * 1024))
    dmi = tmp_path / "product_uuid"
    dmi.write_text(f"{SMBIOS_UUID}\n")
    state = in_memory_state()
    async with run_runtime(*controllers(image, dmi), state=state):
        info = await assert_resource(state, INFO)
        assert (info.spec.uuid, info.spec.source) == (SMBIOS_UUID, UUIDSource.SMBIOS)
        loaded = await assert_resource(state, LOADED)
        assert loaded.spec.found
        assert "META is corrupt" in loaded.spec.error


async def test_the_flag_needs_no_meta(tmp_path: Path) -> None:
    """--node-uuid beats everything: published at once, even with no disk discovered."""
    async with run_runtime(SystemInformationController(node_uuid=META_UUID)) as runtime:
        info = await assert_resource(runtime.state, INFO)
        assert (info.spec.uuid, info.spec.source) == (META_UUID, UUIDSource.FLAG)


async def test_meta_on_a_disk_whose_table_cannot_be_read_still_decides(tmp_path: Path) -> None:
    """Both GPT copies damaged: META may be there but cannot be used; the UUID is decided without it (the
    reason is published) rather than waited for forever."""
    from tests.controllers.block.test_discovery_unreadable_table import break_both_headers

    image = tmp_path / "node.img"
    write_uuid_override(node_image(image), META_UUID)
    break_both_headers(image, 12, "<I", 91, crc_over=91)  # header size 91
    state = in_memory_state()
    async with run_runtime(*controllers(image, tmp_path / "no-dmi"), state=state):
        info = await assert_resource(state, INFO)
        assert (info.spec.uuid, info.spec.source) == ("", UUIDSource.NONE)
        loaded = await assert_resource(state, LOADED)
        assert not loaded.spec.found
        assert loaded.spec.error.startswith("META is not used: missing; disk ")
        assert "unreadable partition table" in loaded.spec.error

"""Slot providers for a volume: a setting a provider refuses is that key's reason, never an error for all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.controllers import KeyResolver
from volumed.controllers.keys._providers import KeyEnvironment, slot_keys
from volumed.resources import (
    BLOCK,
    SYSTEM_INFORMATION_ID,
    EncryptionConfigSpec,
    KeyKind,
    KeySlotSpec,
    SystemInformationDefinition,
    SystemInformationSpec,
    UUIDSource,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumeKeyStatusDefinition,
)
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource, run_runtime

if TYPE_CHECKING:
    from volumed.runtime import Resource

NODE_UUID = "2f3a8b1c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
KEYS = (KeySlotSpec(slot=0, kind=KeyKind.NODE_ID), KeySlotSpec(slot=1, kind=KeyKind.TPM, tpm_pcrs=(7,)))
CONFIG = VolumeConfigSpec(partition_label="u-data", encryption=EncryptionConfigSpec(keys=KEYS))
MALFORMED = "tpm key tcti '/dev/tpmrm0' is not a TCTI string like 'device:/dev/tpmrm0'"


def test_a_malformed_tcti_is_the_tpm_key_s_reason_and_other_keys_are_made() -> None:
    env = KeyEnvironment(node_uuid=NODE_UUID, tcti="/dev/tpmrm0")
    node_id, tpm = slot_keys("u-data", CONFIG, None, env)
    assert (node_id.slot, node_id.provider is not None, node_id.reason) == (0, True, "")
    assert (tpm.slot, tpm.provider, tpm.reason) == (1, None, MALFORMED)


async def test_the_key_resolver_reports_a_malformed_tcti_instead_of_failing() -> None:
    status = Pointer(BLOCK, VolumeKeyStatusDefinition.type, "u-data")
    async with run_runtime(KeyResolver(KeyEnvironment(tcti="/dev/tpmrm0"))) as runtime:
        state = runtime.state
        info = SystemInformationSpec(uuid=NODE_UUID, source=UUIDSource.FLAG)
        await state.create(SystemInformationDefinition.new(SYSTEM_INFORMATION_ID, info), owner="test")
        await state.create(VolumeConfigDefinition.new("u-data", CONFIG), owner="test")
        expected = [(0, True, ""), (1, False, MALFORMED)]
        await assert_resource(state, status, lambda resource: ready(resource) == expected)


def ready(resource: Resource[object]) -> list[tuple[int, bool, str]]:
    return [(k.slot, k.ready, k.reason) for k in resource.spec.keys]  # type: ignore[attr-defined]

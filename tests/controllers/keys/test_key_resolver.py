"""KeyResolver and EncryptionSalt: which keys can be made now, and the salt once STATE is mounted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volumed.controllers import EncryptionSaltController, KeyResolver
from volumed.controllers.keys._providers import SALT_MISSING, KeyEnvironment
from volumed.keys import SALT_FILE_NAME
from volumed.resources import (
    BLOCK,
    ENCRYPTION_SALT_ID,
    SYSTEM_INFORMATION_ID,
    EncryptionConfigSpec,
    EncryptionSaltDefinition,
    KeyKind,
    KeySlotSpec,
    MountStatusDefinition,
    MountStatusSpec,
    StaticKeySpec,
    SystemInformationDefinition,
    SystemInformationSpec,
    UUIDSource,
    VolumeConfigDefinition,
    VolumeConfigSpec,
    VolumeKeySecretsDefinition,
    VolumeKeySecretsSpec,
    VolumeKeyStatusDefinition,
)
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource, run_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime import Resource

KEYS = (
    KeySlotSpec(slot=0, kind=KeyKind.NODE_ID),
    KeySlotSpec(slot=1, kind=KeyKind.STATIC, lock_to_state=True),
    KeySlotSpec(slot=2, kind=KeyKind.TPM, tpm_pcrs=(7,)),
)
STATUS = Pointer(BLOCK, VolumeKeyStatusDefinition.type, "u-data")


def ready(resource: Resource[object]) -> list[tuple[int, bool, str]]:
    return [(k.slot, k.ready, k.reason) for k in resource.spec.keys]  # type: ignore[attr-defined]


async def test_readiness_follows_uuid_salt_and_tpm(tmp_path: Path) -> None:
    env = KeyEnvironment(tcti=f"device:{tmp_path / 'tpmrm0'}")
    async with run_runtime(KeyResolver(env), EncryptionSaltController()) as runtime:
        state = runtime.state
        config = VolumeConfigSpec(partition_label="u-data", encryption=EncryptionConfigSpec(keys=KEYS))
        await state.create(VolumeConfigDefinition.new("u-data", config), owner="test")
        secrets = VolumeKeySecretsSpec(static_keys=(StaticKeySpec(slot=1, passphrase=b"pw"),))
        await state.create(VolumeKeySecretsDefinition.new("u-data", secrets), owner="test")

        status = await assert_resource(state, STATUS)
        assert ready(status) == [
            (0, False, "waiting for the node UUID (META not read yet)"),  # not decided yet
            (1, False, SALT_MISSING),
            (2, False, f"no TPM ({tmp_path / 'tpmrm0'} is missing)"),
        ]
        none = SystemInformationSpec(uuid="", source=UUIDSource.NONE)
        created = await state.create(
            SystemInformationDefinition.new(SYSTEM_INFORMATION_ID, none), owner="test"
        )
        await assert_resource(
            state, STATUS, lambda r: ready(r)[0] == (0, False, "machine UUID is not populated")
        )
        info = SystemInformationSpec(uuid="2f3a8b1c-5d6e-4f70-8a9b-0c1d2e3f4a5b", source=UUIDSource.FLAG)
        found = SystemInformationDefinition.new(SYSTEM_INFORMATION_ID, info)
        await state.update(found.with_metadata(version=created.metadata.version), owner="test")
        await assert_resource(state, STATUS, lambda r: ready(r)[0] == (0, True, ""))

        mount = MountStatusSpec(
            volume_id="STATE", requester="test", source="/dev/x", target=str(tmp_path), filesystem="xfs"
        )
        await state.create(MountStatusDefinition.new("STATE-test", mount), owner="test")
        salt = await assert_resource(state, Pointer(BLOCK, EncryptionSaltDefinition.type, ENCRYPTION_SALT_ID))
        assert (tmp_path / SALT_FILE_NAME).stat().st_mode & 0o777 == 0o600
        assert len(salt.spec.disk_salt.get_secret_value()) == 32
        await assert_resource(state, STATUS, lambda r: ready(r)[1] == (1, True, ""))
        assert ready(await state.get(STATUS))[2][1] is False


async def test_salt_is_created_once_and_reused(tmp_path: Path) -> None:
    first: bytes | None = None
    for _ in range(2):
        async with run_runtime(EncryptionSaltController()) as runtime:
            mount = MountStatusSpec(
                volume_id="STATE", requester="t", source="/dev/x", target=str(tmp_path), filesystem="xfs"
            )
            await runtime.state.create(MountStatusDefinition.new("STATE-t", mount), owner="test")
            salt = await assert_resource(
                runtime.state, Pointer(BLOCK, EncryptionSaltDefinition.type, ENCRYPTION_SALT_ID)
            )
            value = salt.spec.disk_salt.get_secret_value()
            assert first is None or value == first
            first = value

"""EncryptionSalt with an unusable salt file: reported once, kept as it is, re-read quietly until repaired."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import structlog

from volumed.controllers import EncryptionSaltController
from volumed.keys import SALT_FILE_NAME, DiskSalt, encode_salt_file
from volumed.resources import (
    BLOCK,
    ENCRYPTION_SALT_ID,
    EncryptionSaltDefinition,
    MountStatusDefinition,
    MountStatusSpec,
)
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource, run_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime.state import State

SALT = Pointer(BLOCK, EncryptionSaltDefinition.type, ENCRYPTION_SALT_ID)
SHORT_SALT = b"diskSalt:\n    - 1\n    - 2\n    - 3\n"


async def mount_state(state: State, target: Path) -> None:
    mount = MountStatusSpec(
        volume_id="STATE", requester="t", source="/dev/x", target=str(target), filesystem="xfs"
    )
    await state.create(MountStatusDefinition.new("STATE-t", mount), owner="test")


async def test_corrupt_salt_file_is_reported_once_and_kept(tmp_path: Path) -> None:
    """It failed the reconcile: a traceback every backoff step, and nothing but the log said why."""
    salt_file = tmp_path / SALT_FILE_NAME
    salt_file.write_bytes(SHORT_SALT)
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(EncryptionSaltController(retry_interval=0.05)) as runtime:
            await mount_state(runtime.state, tmp_path)
            await anyio.sleep(0.5)  # about ten re-reads
            published = await runtime.state.get(SALT)
            assert published.spec.disk_salt is None
            assert published.spec.error == f"salt file {salt_file}: 'diskSalt' has 3 bytes, expected 32"
            stats = runtime.stats()["EncryptionSalt"]
    assert stats.errors == 0, stats
    assert stats.reconciles > 3, stats  # still re-read
    warnings = [e for e in logs if e["log_level"] in ("warning", "error")]
    assert len(warnings) == 1, logs
    assert "salt file is unusable" in warnings[0]["event"]
    assert warnings[0]["error"] == f"salt file {salt_file}: 'diskSalt' has 3 bytes, expected 32"
    assert not any("exception" in e or "Traceback" in str(e) for e in logs), logs
    assert salt_file.read_bytes() == SHORT_SALT


async def test_repaired_salt_file_is_picked_up(tmp_path: Path) -> None:
    salt_file = tmp_path / SALT_FILE_NAME
    salt_file.write_bytes(SHORT_SALT)
    good = DiskSalt.generate()
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(EncryptionSaltController(retry_interval=0.05)) as runtime:
            await mount_state(runtime.state, tmp_path)
            await anyio.sleep(0.2)
            salt_file.write_bytes(encode_salt_file(good))
            salt = await assert_resource(runtime.state, SALT, lambda r: r.spec.disk_salt is not None)
    assert salt.spec.disk_salt is not None
    assert salt.spec.disk_salt.get_secret_value() == good.reveal()
    assert "the STATE salt file is usable again" in [e["event"] for e in logs]


async def test_key_status_names_the_unusable_salt_file(tmp_path: Path) -> None:
    """With STATE mounted, the reason said "STATE is not mounted"; the real cause was only in the log."""
    from volumed.controllers import KeyResolver
    from volumed.controllers.keys._providers import KeyEnvironment
    from volumed.resources import (
        EncryptionConfigSpec,
        KeyKind,
        KeySlotSpec,
        StaticKeySpec,
        VolumeConfigDefinition,
        VolumeConfigSpec,
        VolumeKeySecretsDefinition,
        VolumeKeySecretsSpec,
        VolumeKeyStatusDefinition,
    )

    salt_file = tmp_path / SALT_FILE_NAME
    salt_file.write_bytes(SHORT_SALT)
    keys = (KeySlotSpec(slot=0, kind=KeyKind.STATIC, lock_to_state=True),)
    status = Pointer(BLOCK, VolumeKeyStatusDefinition.type, "EPHEMERAL")
    async with run_runtime(KeyResolver(KeyEnvironment()), EncryptionSaltController()) as runtime:
        config = VolumeConfigSpec(partition_label="EPHEMERAL", encryption=EncryptionConfigSpec(keys=keys))
        await runtime.state.create(VolumeConfigDefinition.new("EPHEMERAL", config), owner="test")
        secrets = VolumeKeySecretsSpec(static_keys=(StaticKeySpec(slot=0, passphrase=b"pw"),))
        await runtime.state.create(VolumeKeySecretsDefinition.new("EPHEMERAL", secrets), owner="test")
        await mount_state(runtime.state, tmp_path)
        expected = f"salt file {salt_file}: 'diskSalt' has 3 bytes, expected 32"
        await assert_resource(runtime.state, status, lambda r: r.spec.keys[0].reason == expected)

"""STATE and EPHEMERAL get Talos v1.12's provisioning (``system_volumes.go``) when a config is present."""

from __future__ import annotations

from volumed.config import check_config
from volumed.controllers.config._translate import (
    SYSTEM_WAVE,
    USER_WAVE,
    desired_volumes,
    system_volume,
)
from volumed.resources import ProvisioningConfigSpec

MIB = 1024 * 1024


def provisioning_of(text: str) -> dict[str, ProvisioningConfigSpec | None]:
    machine, issues = check_config(text)
    assert not issues, issues
    assert machine is not None
    return {volume.volume_id: volume.config.provisioning for volume in desired_volumes(machine)}


def test_defaults_without_volume_config_documents() -> None:
    found = provisioning_of(
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: d\nprovisioning: {diskSelector: {match: 'true'},"
        " minSize: 1GiB}\n"
    )
    assert found["STATE"] == ProvisioningConfigSpec(
        disk_selector="system_disk", min_size=100 * MIB, max_size=100 * MIB, grow=False, wave=SYSTEM_WAVE
    )
    assert found["EPHEMERAL"] == ProvisioningConfigSpec(
        disk_selector="system_disk", min_size=2048 * MIB, max_size=0, grow=True, wave=SYSTEM_WAVE
    )
    assert found["u-d"] == ProvisioningConfigSpec(disk_selector="true", min_size=1024 * MIB, wave=USER_WAVE)


def test_ephemeral_provisioning_overrides_each_default_it_gives() -> None:
    found = provisioning_of(
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nprovisioning:\n"
        "  diskSelector: {match: '!system_disk'}\n  minSize: 1GiB\n  maxSize: 80%\n  grow: false\n"
    )
    assert found["EPHEMERAL"] == ProvisioningConfigSpec(
        disk_selector="!system_disk", min_size=1024 * MIB, relative_max_size=80, grow=False, wave=SYSTEM_WAVE
    )
    found = provisioning_of(
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nprovisioning: {maxSize: 10GiB}\n"
    )
    ephemeral = found["EPHEMERAL"]
    assert ephemeral is not None
    assert (ephemeral.disk_selector, ephemeral.min_size, ephemeral.max_size, ephemeral.grow) == (
        "system_disk",
        2048 * MIB,
        10 * 1024 * MIB,
        True,
    )


def test_state_without_config_is_only_located() -> None:
    """STATE from META (no machine config) is never provisioned: Talos' manageStateNoConfig."""
    assert system_volume("STATE", None, source="meta").config.provisioning is None


def test_resolve_max_size() -> None:
    assert ProvisioningConfigSpec(relative_max_size=50).resolve_max_size(1000) == 500
    assert ProvisioningConfigSpec(max_size=300).resolve_max_size(1000) == 300
    assert ProvisioningConfigSpec().resolve_max_size(1000) == 0

"""RawVolumeConfig and SwapVolumeConfig get a VolumeConfig as Talos' ``RawVolumeTransformer`` and
``SwapVolumeTransformer`` make them (issue 17): the partition ``r-<name>`` / ``s-<name>`` provisioned like a
user volume (wave 0, minSize 100 MiB by default, maxSize, grow), encrypted as configured, filesystem ``none``
(never formatted) or ``swap``, no mount target."""

from __future__ import annotations

from volumed.config import check_config
from volumed.controllers.config._translate import DesiredVolume, desired_volumes
from volumed.resources import NO_FILESYSTEM, SWAP_FILESYSTEM, ProvisioningConfigSpec

CONFIG = """\
apiVersion: v1alpha1
kind: RawVolumeConfig
name: blocks
provisioning:
  diskSelector: {match: '!system_disk'}
  maxSize: 2GiB
  grow: true
---
apiVersion: v1alpha1
kind: SwapVolumeConfig
name: swap1
provisioning:
  diskSelector: {match: 'disk.transport == "nvme"'}
  minSize: 1GiB
  maxSize: 50%
encryption:
  provider: luks2
  keys:
    - slot: 0
      static: {passphrase: swap secret}
"""

GIB = 1024**3


def volumes(text: str) -> dict[str, DesiredVolume]:
    machine, issues = check_config(text)
    assert not issues, issues
    assert machine is not None
    assert machine.not_supported_yet == ()  # both are acted on now
    return {volume.volume_id: volume for volume in desired_volumes(machine)}


def test_raw_volume() -> None:
    raw = volumes(CONFIG)["r-blocks"]
    assert raw.config.partition_label == "r-blocks"
    assert raw.config.filesystem == NO_FILESYSTEM == "none"  # Talos' FilesystemTypeNone
    assert raw.config.mount_target == ""  # Talos' SkipMountTransform
    assert raw.config.encryption is None
    assert raw.secrets is None
    assert raw.config.provisioning == ProvisioningConfigSpec(
        disk_selector="!system_disk", min_size=100 * 1024 * 1024, max_size=2 * GIB, grow=True, wave=0
    )


def test_swap_volume_encrypted() -> None:
    swap = volumes(CONFIG)["s-swap1"]
    assert swap.config.partition_label == "s-swap1"
    assert swap.config.filesystem == SWAP_FILESYSTEM == "swap"
    assert swap.config.mount_target == ""  # swapped on by the SwapActivator, not mounted
    assert swap.config.provisioning == ProvisioningConfigSpec(
        disk_selector='disk.transport == "nvme"',
        min_size=GIB,
        relative_max_size=50,
        wave=0,
        partition_type="0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",  # Talos' partition.LinkSwap
    )
    assert swap.config.encryption is not None
    assert [key.slot for key in swap.config.encryption.keys] == [0]
    assert swap.secrets is not None
    assert [key.passphrase.get_secret_value() for key in swap.secrets.static_keys] == [b"swap secret"]


def test_order_after_user_volumes() -> None:
    user = (
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\n"
        "provisioning:\n  diskSelector: {match: 'true'}\n  maxSize: 1GiB\n"
    )
    assert list(volumes(f"{CONFIG}---\n{user}")) == ["STATE", "EPHEMERAL", "u-data", "r-blocks", "s-swap1"]

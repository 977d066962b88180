"""Talos v1.12's volume documents: the examples of its source (``exampleXxxV1Alpha1`` in
pkg/machinery/config/types/block/*.go, release-1.12, rendered as the YAML its docs show) load, and each
validation rule fails with Talos' message (volumed's wording where it must not quote the document)."""

from __future__ import annotations

import pytest

from volumed.config import (
    MIN_USER_VOLUME_SIZE,
    ExistingVolumeConfigDocument,
    RawVolumeConfigDocument,
    SwapVolumeConfigDocument,
    ZswapConfigDocument,
    check_config,
    load_config,
)

# user_volume_config.go: exampleUserVolumeConfigV1Alpha1Partition / Directory / Disk.
USER_PARTITION = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: local-data
volumeType: partition
provisioning:
  diskSelector:
    match: disk.transport == "nvme"
  maxSize: 50GiB
filesystem:
  type: xfs
encryption:
  provider: luks2
  keys:
    - slot: 0
      tpm: {}
    - slot: 1
      static:
        passphrase: topsecret
"""
USER_DIRECTORY = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: local-data
volumeType: directory
"""
USER_DISK = """\
apiVersion: v1alpha1
kind: UserVolumeConfig
name: local-data
volumeType: disk
provisioning:
  diskSelector:
    match: disk.transport == "nvme"
filesystem:
  type: xfs
encryption:
  provider: luks2
  keys:
    - slot: 0
      tpm: {}
    - slot: 1
      static:
        passphrase: topsecret
"""
# volume_config.go: exampleVolumeConfigEphemeralV1Alpha1 (and the same for IMAGECACHE).
EPHEMERAL = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
provisioning:
  diskSelector:
    match: disk.transport == "nvme"
  maxSize: 50GiB
"""
IMAGECACHE = EPHEMERAL.replace("EPHEMERAL", "IMAGECACHE")
# raw_volume_config.go: exampleRawVolumeConfigV1Alpha1.
RAW = """\
apiVersion: v1alpha1
kind: RawVolumeConfig
name: local-data
provisioning:
  diskSelector:
    match: disk.transport == "nvme"
  maxSize: 50GiB
"""
# existing_volume_config.go: exampleExistingVolumeConfigV1Alpha1 (plus mount.readOnly).
EXISTING = """\
apiVersion: v1alpha1
kind: ExistingVolumeConfig
name: my-existing-volume
discovery:
  volumeSelector:
    match: volume.partition_label == "MY-DATA"
mount:
  readOnly: true
"""
# swap_volume_config.go: exampleSwapVolumeConfigV1Alpha1.
SWAP = """\
apiVersion: v1alpha1
kind: SwapVolumeConfig
name: swap1
provisioning:
  diskSelector:
    match: disk.transport == "nvme"
  minSize: 3GiB
  maxSize: 4GiB
encryption:
  provider: luks2
  keys:
    - slot: 0
      static:
        passphrase: swapsecret
"""
# zswap_config.go: exampleZswapConfigV1Alpha1.
ZSWAP = """\
apiVersion: v1alpha1
kind: ZswapConfig
maxPoolPercent: 25
shrinkerEnabled: true
"""
ALL = [USER_PARTITION, USER_DIRECTORY, USER_DISK, EPHEMERAL, IMAGECACHE, RAW, EXISTING, SWAP, ZSWAP]


@pytest.mark.parametrize(
    "text",
    ALL,
    ids=[
        "user-partition",
        "user-directory",
        "user-disk",
        "ephemeral",
        "imagecache",
        "raw",
        "existing",
        "swap",
        "zswap",
    ],
)
def test_talos_example_loads(text: str) -> None:
    config = load_config(text)
    assert config.labels


def test_every_kind_in_one_config_and_what_is_not_acted_on_is_named() -> None:
    text = "---\n".join(
        [
            USER_PARTITION,
            EPHEMERAL,
            IMAGECACHE,
            RAW,
            EXISTING,
            SWAP,
            ZSWAP,
            USER_DIRECTORY.replace("local-data", "dir"),
            USER_DISK.replace("local-data", "whole"),
        ]
    )
    config = load_config(text)
    assert config.labels == (
        "VolumeConfig/EPHEMERAL",
        "VolumeConfig/IMAGECACHE",
        "UserVolumeConfig/local-data",
        "UserVolumeConfig/dir",
        "UserVolumeConfig/whole",
        "RawVolumeConfig/local-data",
        "ExistingVolumeConfig/my-existing-volume",
        "SwapVolumeConfig/swap1",
        "ZswapConfig/",
    )
    assert config.not_supported_yet == (
        "VolumeConfig/IMAGECACHE: accepted but not provisioned: Talos makes this volume only for its image"
        " cache (machine.features.imageCache.localEnabled), which volumed does not run",
    )  # ZswapConfig is applied (the Zswap controller), directory, disk and existing volumes are made


def test_fields_and_defaults() -> None:
    config = load_config("---\n".join([RAW, EXISTING, SWAP, ZSWAP, USER_DIRECTORY]))
    raw, existing, swap, zswap = config.others
    assert isinstance(raw, RawVolumeConfigDocument)
    assert raw.volume_id == "r-local-data"
    assert raw.min_size_or_default == MIN_USER_VOLUME_SIZE == 100 * 1024 * 1024
    assert isinstance(existing, ExistingVolumeConfigDocument)
    assert existing.read_only
    assert existing.volume_id == "e-my-existing-volume"
    assert isinstance(swap, SwapVolumeConfigDocument)
    assert swap.volume_id == "s-swap1"
    assert swap.min_size_or_default == 3 * 1024**3
    assert isinstance(zswap, ZswapConfigDocument)
    assert (zswap.effective_max_pool_percent, zswap.effective_shrinker_enabled) == (25, True)
    default = load_config("apiVersion: v1alpha1\nkind: ZswapConfig\n").others[0]
    assert isinstance(default, ZswapConfigDocument)
    assert (default.effective_max_pool_percent, default.effective_shrinker_enabled) == (20, False)
    user = config.user_volume("local-data")
    assert user is not None
    assert user.effective_volume_type == "directory"
    assert user.managed  # a directory on EPHEMERAL
    disk = load_config(USER_DISK).user_volume("local-data")
    assert disk is not None
    assert disk.managed  # the whole disk its selector matches
    partition = load_config(USER_PARTITION).user_volume("local-data")
    assert partition is not None
    assert partition.managed
    assert partition.min_size_or_default == MIN_USER_VOLUME_SIZE


def test_project_quota_and_percentage_max_size() -> None:
    text = USER_PARTITION.replace("maxSize: 50GiB", "maxSize: 80%").replace(
        "  type: xfs", "  type: xfs\n  projectQuotaSupport: true"
    )
    user = load_config(text).user_volume("local-data")
    assert user is not None
    assert user.filesystem.project_quota_support is True
    assert user.provisioning.max_percent == 80


USER = "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\n"
SELECTOR = "  diskSelector: {match: 'disk.transport == \"nvme\"'}\n"
RULES = [
    (
        "VolumeConfig names",
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: ETCD\n",
        ['VolumeConfig (document 1): name: only ["STATE" "EPHEMERAL" "IMAGECACHE"] volumes are supported'],
    ),
    (
        "partition: provisioning required",
        USER,
        [
            "UserVolumeConfig/data: provisioning.diskSelector.match: disk selector is required",
            "UserVolumeConfig/data: provisioning: min size or max size is required",
        ],
    ),
    (
        "directory: no provisioning, encryption, filesystem",
        USER + "volumeType: directory\nprovisioning:\n" + SELECTOR + "encryption: {provider: luks2}\n"
        "filesystem: {type: xfs}\n",
        [
            "UserVolumeConfig/data: provisioning: provisioning spec is invalid for volumeType directory",
            "UserVolumeConfig/data: encryption: encryption spec is invalid for volumeType directory",
            "UserVolumeConfig/data: filesystem: filesystem spec is invalid for volumeType directory",
        ],
    ),
    (
        "disk: selector required",
        USER + "volumeType: disk\n",
        ["UserVolumeConfig/data: provisioning.diskSelector.match: disk selector is required"],
    ),
    (
        "disk: no sizes",
        USER + "volumeType: disk\nprovisioning:\n" + SELECTOR + "  minSize: 1GiB\n",
        ["UserVolumeConfig/data: provisioning: min size, max size and grow are not supported"],
    ),
    (
        "disk: no grow",
        USER + "volumeType: disk\nprovisioning:\n" + SELECTOR + "  grow: false\n",
        ["UserVolumeConfig/data: provisioning: min size, max size and grow are not supported"],
    ),
    (
        "unsupported volume type",
        USER + "volumeType: overlay\n",
        [
            "UserVolumeConfig/data: volumeType: unsupported volume type"
            ' (supported: "partition", "directory", "disk")'
        ],
    ),
    (
        "project quota on ext4",
        USER
        + "provisioning:\n"
        + SELECTOR
        + "  minSize: 1GiB\nfilesystem: {type: ext4, projectQuotaSupport: true}\n",
        [
            "UserVolumeConfig/data: filesystem.projectQuotaSupport: project quota support is only available"
            " for xfs filesystem"
        ],
    ),
    (
        "raw: provisioning required, name rules",
        "apiVersion: v1alpha1\nkind: RawVolumeConfig\nname: a_b\n",
        [
            "RawVolumeConfig (document 1): name: name can only contain lowercase and uppercase ASCII letters,"
            " digits, and hyphens",
            "RawVolumeConfig (document 1): provisioning.diskSelector.match: disk selector is required",
            "RawVolumeConfig (document 1): provisioning: min size or max size is required",
        ],
    ),
    (
        "raw: name length",
        "apiVersion: v1alpha1\nkind: RawVolumeConfig\nname: "
        + "r" * 35
        + "\nprovisioning:\n"
        + SELECTOR
        + "  maxSize: 1GiB\n",
        ["RawVolumeConfig (document 1): name: name must be between 1 and 34 characters long"],
    ),
    (
        "swap: min <= max, encryption rules",
        "apiVersion: v1alpha1\nkind: SwapVolumeConfig\nname: s\nprovisioning:\n"
        + SELECTOR
        + "  minSize: 2GiB\n  maxSize: 1GiB\nencryption: {provider: luks2}\n",
        [
            "SwapVolumeConfig/s: provisioning: min size is greater than max size",
            "SwapVolumeConfig/s: encryption.keys: encryption keys are required",
        ],
    ),
    (
        "existing: selector required",
        "apiVersion: v1alpha1\nkind: ExistingVolumeConfig\nname: e\n",
        ["ExistingVolumeConfig/e: discovery.volumeSelector.match: volume selector is required"],
    ),
    (
        "existing: selector invalid",
        "apiVersion: v1alpha1\nkind: ExistingVolumeConfig\nname: e\n"
        "discovery: {volumeSelector: {match: 'volume.name =='}}\n",
        [
            "ExistingVolumeConfig/e: discovery.volumeSelector.match: volume selector is invalid: syntax error"
            " at line 1, column 13"
        ],
    ),
    (
        "existing: name required",
        "apiVersion: v1alpha1\nkind: ExistingVolumeConfig\nname: ''\n"
        "discovery: {volumeSelector: {match: 'true'}}\n",
        ["ExistingVolumeConfig (document 1): name: name is required"],
    ),
    (
        "zswap: percent range",
        "apiVersion: v1alpha1\nkind: ZswapConfig\nmaxPoolPercent: 101\n",
        ["ZswapConfig: maxPoolPercent: maxPoolPercent must be between 0 and 100"],
    ),
    (
        "zswap: one per config",
        "apiVersion: v1alpha1\nkind: ZswapConfig\n---\napiVersion: v1alpha1\nkind: ZswapConfig\n",
        ["ZswapConfig: duplicate document"],
    ),
    (
        "zswap: strict fields",
        "apiVersion: v1alpha1\nkind: ZswapConfig\nname: z\n",
        ["ZswapConfig: name: unknown field"],
    ),
    (
        "user and existing volumes conflict",
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: x\nvolumeType: directory\n---\n"
        "apiVersion: v1alpha1\nkind: ExistingVolumeConfig\nname: x\n"
        "discovery: {volumeSelector: {match: 'true'}}\n",
        ["ExistingVolumeConfig/x: conflicting documents: UserVolumeConfig/x and ExistingVolumeConfig/x"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(text: str, expected: list[str]) -> None:
    config, issues = check_config(text)
    assert config is None
    assert [str(issue) for issue in issues] == expected

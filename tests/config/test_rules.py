"""Every validation rule, each with a document that breaks it and the exact message it gets."""

from __future__ import annotations

import pytest

from volumed.config import ConfigInvalidError, check_config, load_config

HEAD_STATE = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\n"
HEAD_EPH = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n"
HEAD_USER = "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\n"
PROVISIONING = "provisioning:\n  diskSelector: {match: 'true'}\n  maxSize: 1GiB\n"


def issues(text: str) -> list[str]:
    config, found = check_config(text)
    assert config is None
    return [str(issue) for issue in found]


CASES: list[tuple[str, str, list[str]]] = [
    (
        "provider",
        HEAD_EPH + "encryption:\n  provider: luks1\n  keys: [{nodeID: {}}]\n",
        ["VolumeConfig/EPHEMERAL: encryption.provider: unsupported encryption provider (supported: luks2)"],
    ),
    (
        "provider none with keys",
        HEAD_EPH + "encryption:\n  provider: none\n  keys: [{nodeID: {}}]\n",
        ["VolumeConfig/EPHEMERAL: encryption.provider: unsupported encryption provider (supported: luks2)"],
    ),
    (
        "at least one key",
        HEAD_EPH + "encryption:\n  provider: luks2\n",
        ["VolumeConfig/EPHEMERAL: encryption.keys: encryption keys are required"],
    ),
    (
        "unique slots",
        HEAD_EPH + "encryption:\n  keys:\n    - {slot: 1, nodeID: {}}\n    - {slot: 1, tpm: {}}\n",
        ["VolumeConfig/EPHEMERAL: encryption.keys[1].slot: duplicate key slot"],
    ),
    (
        "slot range",
        HEAD_EPH + "encryption:\n  keys:\n    - {slot: 32, nodeID: {}}\n",
        ["VolumeConfig/EPHEMERAL: encryption.keys[0].slot: key slot is out of range (0 to 31)"],
    ),
    (
        "a kind per key",
        HEAD_EPH + "encryption:\n  keys:\n    - {slot: 2}\n",
        ["VolumeConfig/EPHEMERAL: encryption.keys[0]: at least one encryption key type must be specified"],
    ),
    (
        "only one kind per key",
        HEAD_EPH + "encryption:\n  keys:\n    - {slot: 0, nodeID: {}, tpm: {}}\n",
        [
            "VolumeConfig/EPHEMERAL: encryption.keys[0]: "
            "only one encryption key type can be specified, got: nodeID, tpm"
        ],
    ),
    (
        "PCR range",
        HEAD_EPH + "encryption:\n  keys:\n    - tpm: {options: {pcrs: [7, 24, -1]}}\n",
        [
            "VolumeConfig/EPHEMERAL: encryption.keys[0].tpm.options.pcrs[1]: PCR is out of range (0 to 23)",
            "VolumeConfig/EPHEMERAL: encryption.keys[0].tpm.options.pcrs[2]: PCR is out of range (0 to 23)",
        ],
    ),
    (
        "PCR duplicate",
        HEAD_EPH + "encryption:\n  keys:\n    - tpm: {options: {pcrs: [7, 7]}}\n",
        ["VolumeConfig/EPHEMERAL: encryption.keys[0].tpm.options.pcrs[1]: duplicate PCR"],
    ),
    (
        "no lockToState on STATE",
        HEAD_STATE + "encryption:\n  keys:\n    - {nodeID: {}, lockToSTATE: true}\n",
        [
            "VolumeConfig/STATE: encryption.keys[0].lockToState: state-locked key is not allowed for the"
            ' "STATE" volume'
        ],
    ),
    (
        "lockToState spelled twice",
        HEAD_EPH + "encryption:\n  keys:\n    - {nodeID: {}, lockToSTATE: true, lockToState: true}\n",
        [
            "VolumeConfig/EPHEMERAL: encryption.keys[0]: lockToState is given twice (as lockToState and"
            " lockToSTATE)"
        ],
    ),
    (
        "static passphrase",
        HEAD_EPH + "encryption:\n  keys:\n    - static: {}\n",
        ["VolumeConfig/EPHEMERAL: encryption.keys[0].static.passphrase: static passphrase must not be empty"],
    ),
    (
        "kms endpoint",
        HEAD_EPH + "encryption:\n  keys:\n    - kms: {}\n",
        ["VolumeConfig/EPHEMERAL: encryption.keys[0].kms.endpoint: KMS endpoint is required"],
    ),
    (
        "key size",
        HEAD_EPH + "encryption:\n  keySize: 100\n  keys: [{nodeID: {}}]\n",
        [
            "VolumeConfig/EPHEMERAL: encryption.keySize: unsupported key size for aes-xts-plain64"
            " (supported: 256 or 512 bits)"
        ],
    ),
    (
        "block size",
        HEAD_EPH + "encryption:\n  blockSize: 8192\n  keys: [{nodeID: {}}]\n",
        ["VolumeConfig/EPHEMERAL: encryption.blockSize: block size is not one of 512, 1024, 2048, 4096"],
    ),
    (
        "perf options",
        HEAD_EPH + "encryption:\n  options: [no_read_workqueue, fast]\n  keys: [{nodeID: {}}]\n",
        [
            "VolumeConfig/EPHEMERAL: encryption.options[1]: unsupported perf option "
            "(no_read_workqueue, no_write_workqueue, same_cpu_crypt)"
        ],
    ),
    (
        "pbkdf type",
        HEAD_EPH + "encryption:\n  pbkdf: {type: scrypt}\n  keys: [{nodeID: {}}]\n",
        ["VolumeConfig/EPHEMERAL: encryption.pbkdf.type: unsupported pbkdf type (argon2id, argon2i)"],
    ),
    (
        "pbkdf argon2 limits",
        HEAD_EPH + "encryption:\n  pbkdf: {type: argon2i, memory: 16, iterations: 3, parallel: 5}\n  keys:"
        " [{nodeID: {}}]\n",
        [
            "VolumeConfig/EPHEMERAL: encryption.pbkdf.memory: argon2 memory must be between 32 and 4194304"
            " KiB",
            "VolumeConfig/EPHEMERAL: encryption.pbkdf.iterations: argon2 needs at least 4 iterations",
            "VolumeConfig/EPHEMERAL: encryption.pbkdf.parallel: argon2 parallel must be between 1 and 4",
        ],
    ),
    (
        "pbkdf2 is refused (Talos cannot open pbkdf2 key slots)",
        HEAD_EPH + "encryption:\n  pbkdf: {type: pbkdf2, memory: 64, iterations: 999, parallel: 1}\n  keys:"
        " [{nodeID: {}}]\n",
        [
            "VolumeConfig/EPHEMERAL: encryption.pbkdf.type: pbkdf2 is not allowed: Talos (v1.12.7 and later)"
            " refuses to open a LUKS2 volume with pbkdf2 key slots (argon2id, argon2i)"
        ],
    ),
    (
        "system volume names",
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: BOOT\n",
        ['VolumeConfig (document 1): name: only ["STATE" "EPHEMERAL" "IMAGECACHE"] volumes are supported'],
    ),
    (
        "no provisioning on STATE",
        HEAD_STATE + "provisioning: {grow: true}\n",
        ['VolumeConfig/STATE: provisioning: provisioning config is not allowed for the "STATE" volume'],
    ),
    (
        "apiVersion",
        "apiVersion: v1alpha2\nkind: VolumeConfig\nname: STATE\n",
        ['VolumeConfig/STATE: apiVersion: unsupported apiVersion, expected "v1alpha1"'],
    ),
    (
        "user volume name characters",
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: my_volume\n" + PROVISIONING,
        [
            "UserVolumeConfig (document 1): name: "
            "name can only contain lowercase and uppercase ASCII letters, digits, and hyphens"
        ],
    ),
    (
        "user volume name length",
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: " + "a" * 35 + "\n" + PROVISIONING,
        ["UserVolumeConfig (document 1): name: name must be between 1 and 34 characters long"],
    ),
    (
        "user volume name required",
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: ''\n" + PROVISIONING,
        [
            "UserVolumeConfig (document 1): name: name is required",
            "UserVolumeConfig (document 1): name: name must be between 1 and 34 characters long",
        ],
    ),
    (
        "volume type",
        HEAD_USER + "volumeType: tmpfs\n" + PROVISIONING,
        [
            "UserVolumeConfig/data: volumeType: unsupported volume type"
            ' (supported: "partition", "directory", "disk")'
        ],
    ),
    (
        "disk selector required with provisioning",
        HEAD_USER + "provisioning: {minSize: 1GiB}\n",
        ["UserVolumeConfig/data: provisioning.diskSelector.match: disk selector is required"],
    ),
    (
        "a size required with a selector",
        HEAD_USER + "provisioning: {diskSelector: {match: 'true'}}\n",
        ["UserVolumeConfig/data: provisioning: min size or max size is required"],
    ),
    (
        "minSize <= maxSize",
        HEAD_USER + "provisioning: {diskSelector: {match: 'true'}, minSize: 2GB, maxSize: 1GB}\n",
        ["UserVolumeConfig/data: provisioning: min size is greater than max size"],
    ),
    (
        "EPHEMERAL sizes",
        HEAD_EPH + "provisioning: {minSize: 2GB, maxSize: 1GB}\n",
        ["VolumeConfig/EPHEMERAL: provisioning: min size is greater than max size"],
    ),
    (
        "size syntax",
        HEAD_USER + "provisioning: {diskSelector: {match: 'true'}, minSize: 10XB}\n",
        [
            "UserVolumeConfig/data: provisioning.minSize: invalid size: unknown unit"
            " (units: B, kB, KiB, MB, MiB, GB, GiB, TB, TiB, PB, PiB, EB, EiB)"
        ],
    ),
    (
        "negative size",
        HEAD_USER + "provisioning: {diskSelector: {match: 'true'}, maxSize: -1}\n",
        ["UserVolumeConfig/data: provisioning.maxSize: invalid size: cannot be negative"],
    ),
    (
        "selector syntax",
        HEAD_USER + "provisioning: {diskSelector: {match: 'disk.size >'}, maxSize: 1GB}\n",
        [
            "UserVolumeConfig/data: provisioning.diskSelector.match: "
            "disk selector is invalid: syntax error at line 1, column 11"
        ],
    ),
    (
        "selector field",
        HEAD_USER + "provisioning: {diskSelector: {match: 'disk.colour == \"red\"'}, maxSize: 1GB}\n",
        [
            "UserVolumeConfig/data: provisioning.diskSelector.match: disk selector is invalid: no such"
            " field of disk at line 1, column 6"
        ],
    ),
    (
        "selector type",
        HEAD_USER + "provisioning: {diskSelector: {match: 'disk.size'}, maxSize: 1GB}\n",
        [
            "UserVolumeConfig/data: provisioning.diskSelector.match: "
            "disk selector is invalid: expression output type is uint, expected bool"
        ],
    ),
    (
        "selector names",
        HEAD_USER + "provisioning: {diskSelector: {match: 'dsk.size > 1u'}, maxSize: 1GB}\n",
        [
            "UserVolumeConfig/data: provisioning.diskSelector.match: "
            "disk selector is invalid: undeclared reference at line 1, column 1"
        ],
    ),
    (
        "filesystem type",
        HEAD_USER + PROVISIONING + "filesystem: {type: btrfs}\n",
        ["UserVolumeConfig/data: filesystem.type: unsupported filesystem type (xfs, ext4)"],
    ),
    (
        "unknown field",
        HEAD_EPH + "encryption:\n  keys: [{nodeID: {}, slots: 1}]\n",
        ["VolumeConfig/EPHEMERAL: encryption.keys[0]: unknown field at line 5, column 23"],
    ),
    (
        "Talos field volumed does not support",
        HEAD_USER + PROVISIONING + "mount: {secure: true}\n",
        ["UserVolumeConfig/data: mount: field of Talos' schema that volumed does not support"],
    ),
    (
        "wrong type",
        HEAD_USER + "provisioning: {diskSelector: {match: 'true'}, maxSize: 1GB, grow: 'yes'}\n",
        ["UserVolumeConfig/data: provisioning.grow: expected a boolean"],
    ),
    (
        "missing name",
        "apiVersion: v1alpha1\nkind: VolumeConfig\n",
        ["VolumeConfig (document 1): name: field is required"],
    ),
    (
        "duplicate document",
        HEAD_STATE + "---\n" + HEAD_STATE,
        ["VolumeConfig/STATE: duplicate document"],
    ),
    (
        "not a mapping",
        "- a\n- b\n",
        ["document 1: expected a mapping, got list"],
    ),
    (
        "YAML syntax",
        HEAD_STATE + "---\nkey: [unclosed\n",
        ["document 2: invalid YAML: line 6, column 1: expected ',' or ']', but got '<stream end>'"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_rule(text: str, expected: list[str]) -> None:
    assert issues(text) == expected


def test_all_issues_of_all_documents_are_collected() -> None:
    text = (
        HEAD_STATE
        + "bogus: 1\nencryption:\n  cipher: [5]\n  keys:\n    - {slot: 0, nodeID: {}, lockToState: true}\n"
        + "    - {slot: 0, tpm: {}}\n---\n"
        + HEAD_USER
        + "provisioning: {diskSelector: {match: 'true'}, minSize: 3GB, maxSize: 1GB}\n"
    )
    assert issues(text) == [
        "VolumeConfig/STATE: encryption.cipher: expected a string",
        "VolumeConfig/STATE: unknown field at line 4, column 1",
        "VolumeConfig/STATE: encryption.keys[0].lockToState: state-locked key is not allowed for the"
        ' "STATE" volume',
        "VolumeConfig/STATE: encryption.keys[1].slot: duplicate key slot",
        "UserVolumeConfig/data: provisioning: min size is greater than max size",
    ]


def test_load_config_raises_with_every_issue() -> None:
    with pytest.raises(ConfigInvalidError) as raised:
        load_config(
            HEAD_EPH
            + "encryption:\n  provider: luks2\n---\n"
            + "apiVersion: v1alpha1\nkind: VolumeConfig\nname: X\n"
        )
    assert str(raised.value) == (
        "VolumeConfig/EPHEMERAL: encryption.keys: encryption keys are required\n"
        'VolumeConfig (document 2): name: only ["STATE" "EPHEMERAL" "IMAGECACHE"] volumes are supported'
    )
    assert len(raised.value.issues) == 2


def test_partition_user_volume_requires_provisioning() -> None:
    """Talos' ProvisioningSpec.Validate(required=true) for partition volumes (volumed accepted none
    before)."""
    assert issues(HEAD_USER + "encryption:\n  keys: [{nodeID: {}}]\n") == [
        "UserVolumeConfig/data: provisioning.diskSelector.match: disk selector is required",
        "UserVolumeConfig/data: provisioning: min size or max size is required",
    ]

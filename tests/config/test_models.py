"""Defaults and helpers of the parsed documents, and secrets kept out of reprs and messages."""

from __future__ import annotations

import pytest
import structlog.testing

from volumed.config import (
    DEFAULT_CIPHER,
    ConfigInvalidError,
    DiskDescription,
    KeyKind,
    check_config,
    load_config,
)

from ._helpers import USER_VOLUME


def test_user_volume_fields_and_helpers() -> None:
    config = load_config(USER_VOLUME)
    document = config.user_volume("data")
    assert document is not None
    assert config.user_volumes == (document,)
    assert document.volume_id == "u-data"
    assert document.partition_label == "u-data"
    assert document.locator == "volume.partition_label == 'u-data'"
    assert document.filesystem_type == "ext4"
    provisioning = document.provisioning
    assert provisioning.min_size is not None
    assert provisioning.min_size.value == 1024**3
    assert provisioning.max_size is not None
    assert provisioning.max_size.value == int(2.5 * 1024**3)
    assert str(provisioning.max_size) == "2.5GiB"
    selector = provisioning.selector()
    assert selector is not None
    assert selector.matches(DiskDescription(dev_path="/dev/sdb", size=20 * 1024**3))
    assert not selector.matches(DiskDescription(dev_path="/dev/sda", size=20 * 1024**3), system_disk=True)
    encryption = document.effective_encryption
    assert encryption is not None
    assert encryption.effective_cipher == "aes-xts-plain64"
    assert encryption.effective_key_size_bits == 256
    assert encryption.effective_block_size == 4096
    assert encryption.perf_options == ("no_read_workqueue", "same_cpu_crypt")
    assert encryption.discards_allowed
    assert encryption.pbkdf is not None
    assert encryption.pbkdf.memory == 32768
    assert [key.kind for key in encryption.keys] == [
        KeyKind.TPM,
        KeyKind.STATIC,
        KeyKind.KMS,
        KeyKind.NODE_ID,
    ]
    assert [key.locked_to_state for key in encryption.keys] == [False, True, False, False]
    tpm = encryption.keys[0].tpm
    assert tpm is not None
    assert tpm.effective_pcrs == (0, 7)
    assert tpm.check_secureboot_status_on_enroll is True
    kms = encryption.keys[2].kms
    assert kms is not None
    assert kms.endpoint == "kms.example:4050"


def test_defaults() -> None:
    config = load_config(
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nencryption:\n"
        "  provider: luks2\n  keys:\n    - tpm: {}\n"
    )
    document = config.volume("EPHEMERAL")
    assert document is not None
    assert config.volume("STATE") is None
    assert document.volume_id == document.partition_label == "EPHEMERAL"
    assert document.filesystem_type == "xfs"
    encryption = document.encryption
    assert encryption.effective_cipher == DEFAULT_CIPHER
    assert encryption.effective_key_size_bits == 512
    assert encryption.effective_block_size is None
    assert encryption.perf_options == ()
    assert not encryption.discards_allowed
    key = encryption.keys[0]
    assert key.slot == 0
    assert key.tpm is not None
    assert key.tpm.effective_pcrs == (7,)


def test_key_size_defaults_to_512_bits() -> None:
    config = load_config(
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nencryption:\n"
        "  cipher: aes-xts-plain64\n  keys:\n    - nodeID: {}\n"
    )
    document = config.volume("EPHEMERAL")
    assert document is not None
    assert document.encryption.effective_key_size_bits == 512


def test_empty_pcr_list_binds_to_none() -> None:
    config = load_config(
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nencryption:\n"
        "  keys:\n    - tpm: {options: {pcrs: []}}\n"
    )
    document = config.volume("EPHEMERAL")
    assert document is not None
    tpm = document.encryption.keys[0].tpm
    assert tpm is not None
    assert tpm.effective_pcrs == ()


def test_no_encryption() -> None:
    config = load_config("apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\nencryption: {}\n")
    document = config.volume("STATE")
    assert document is not None
    assert document.effective_encryption is None
    config = load_config(
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\nencryption: {provider: none}\n"
    )
    document = config.volume("STATE")
    assert document is not None
    assert document.effective_encryption is None


def test_other_documents_are_ignored_and_imagecache_is_loaded() -> None:
    text = (
        "version: v1alpha1\nmachine: {type: worker}\n---\n"
        "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: n1\n---\n"
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: IMAGECACHE\nprovisioning: {maxSize: 1GiB}\n---\n"
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\n---\n"
    )
    config = load_config(text)
    assert config.ignored == 2
    # IMAGECACHE is a Talos v1.12 system volume: loaded and validated (it was dropped silently), and named as
    # not provisioned by volumed.
    assert [document.name for document in config.documents] == ["IMAGECACHE", "STATE"]
    assert config.not_supported_yet == (
        "VolumeConfig/IMAGECACHE: accepted but not provisioned: Talos makes this volume only for its image"
        " cache (machine.features.imageCache.localEnabled), which volumed does not run",
    )


def test_ignored_documents_are_logged_at_debug() -> None:
    with structlog.testing.capture_logs() as logs:
        load_config("version: v1alpha1\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: n\n")
    assert [(log["event"], log["log_level"]) for log in logs] == [
        ("ignoring config document of another kind", "debug"),
        ("ignoring config document of another kind", "debug"),
    ]


def test_non_string_field_names() -> None:
    config, issues = check_config("apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\n1.5: x\n")
    assert config is None
    assert [str(issue) for issue in issues] == [
        "VolumeConfig/STATE: field names must be strings at line 4, column 1"
    ]


def test_empty_documents_are_skipped() -> None:
    config = load_config("---\n---\napiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n---\n")
    assert [document.name for document in config.documents] == ["EPHEMERAL"]  # the empty ones skipped
    assert config.ignored == 0


def test_static_passphrase_never_in_repr_or_errors() -> None:
    config = load_config(USER_VOLUME)
    assert "topsecret" not in repr(config)
    assert "topsecret" not in str(config)
    bad = USER_VOLUME.replace("static: {passphrase: topsecret}", "static: {passphrase: [topsecret]}")
    with pytest.raises(ConfigInvalidError) as raised:
        load_config(bad)
    assert "topsecret" not in str(raised.value)
    assert [str(issue) for issue in raised.value.issues] == [
        "UserVolumeConfig/data: encryption.keys[1].static.passphrase: expected a string"
    ]


def test_numeric_passphrase_is_text() -> None:
    config = load_config(USER_VOLUME.replace("passphrase: topsecret", "passphrase: 1234"))
    document = config.user_volume("data")
    assert document is not None
    static = document.encryption.keys[1].static
    assert static is not None
    assert static.passphrase.get_secret_value() == "1234"


def test_key_kind_of_an_invalid_key_raises() -> None:
    from volumed.config import EncryptionKey

    with pytest.raises(ValueError, match="has 0 key kinds"):
        _ = EncryptionKey().kind


def test_check_config_reports_instead_of_raising() -> None:
    config, issues = check_config(b"\xff\xfe")
    assert config is None
    assert [str(issue) for issue in issues] == ["config: not UTF-8 text (byte 0)"]

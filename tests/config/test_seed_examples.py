"""Every YAML example of Talos' v1.12 disk-encryption guide loads as written."""

from __future__ import annotations

import pytest

from volumed.config import KeyKind, check_config, load_config

from ._helpers import SEED_DOC, seed_yaml_blocks

BLOCKS = seed_yaml_blocks(SEED_DOC.read_text())


def test_the_seed_doc_has_five_examples() -> None:
    assert len(BLOCKS) == 5


LOADING = [block for index, block in enumerate(BLOCKS) if index != 1]


@pytest.mark.parametrize("block", LOADING, ids=[f"example-{i}" for i in (1, 3, 4, 5)])
def test_example_loads(block: str) -> None:
    config = load_config(block)
    assert config.documents


def test_the_user_volume_example_is_refused_as_talos_refuses_it() -> None:
    """The guide's UserVolumeConfig has no provisioning: Talos' own validation (ProvisioningSpec.Validate with
    required=true for a partition volume) refuses it, so volumed does too, with Talos' messages."""
    config, problems = check_config(BLOCKS[1])
    assert config is None
    assert [str(problem) for problem in problems] == [
        "UserVolumeConfig/my-user-volume: provisioning.diskSelector.match: disk selector is required",
        "UserVolumeConfig/my-user-volume: provisioning: min size or max size is required",
    ]


def summary(block: str) -> list[tuple[str, list[tuple[int, KeyKind, bool]]]]:
    config = load_config(block)
    return [
        (document.volume_id, [(key.slot, key.kind, key.locked_to_state) for key in document.encryption.keys])
        for document in config.documents
    ]


def test_examples_mean_what_the_guide_says() -> None:
    assert summary(BLOCKS[0]) == [
        ("STATE", [(0, KeyKind.NODE_ID, False)]),
        ("EPHEMERAL", [(0, KeyKind.NODE_ID, False)]),
    ]
    with_provisioning = BLOCKS[1] + "provisioning: {diskSelector: {match: '!system_disk'}, minSize: 1GiB}\n"
    assert summary(with_provisioning) == [("u-my-user-volume", [(0, KeyKind.NODE_ID, False)])]
    # The guide spells lockToSTATE; it means lockToState.
    assert summary(BLOCKS[2]) == [
        ("STATE", [(1, KeyKind.NODE_ID, False)]),
        ("EPHEMERAL", [(0, KeyKind.STATIC, True)]),
    ]
    assert summary(BLOCKS[3]) == [("EPHEMERAL", [(0, KeyKind.STATIC, False), (1, KeyKind.STATIC, False)])]
    assert summary(BLOCKS[4]) == [("EPHEMERAL", [(1, KeyKind.STATIC, False)])]


def test_examples_without_provider_are_luks2() -> None:
    ephemeral = load_config(BLOCKS[2]).volume("EPHEMERAL")
    assert ephemeral is not None
    assert ephemeral.encryption.provider == ""
    assert ephemeral.encryption.effective_provider == "luks2"
    assert ephemeral.effective_encryption is ephemeral.encryption
    static = ephemeral.encryption.keys[0].static
    assert static is not None
    assert static.passphrase.get_secret_value() == "supersecret"

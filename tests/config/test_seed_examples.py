"""Every YAML example of Talos' v1.12 disk-encryption guide loads as written."""

from __future__ import annotations

import pytest

from volumed.config import KeyKind, load_config

from ._helpers import SEED_DOC, seed_yaml_blocks

BLOCKS = seed_yaml_blocks(SEED_DOC.read_text())


def test_the_seed_doc_has_five_examples() -> None:
    assert len(BLOCKS) == 5


@pytest.mark.parametrize("block", BLOCKS, ids=[f"example-{i}" for i in range(1, len(BLOCKS) + 1)])
def test_example_loads(block: str) -> None:
    config = load_config(block)
    assert config.documents


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
    assert summary(BLOCKS[1]) == [("u-my-user-volume", [(0, KeyKind.NODE_ID, False)])]
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

"""The YAML examples of docs/configuration.md are valid configs; its tag 9 example is what we write."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from volumed.config import encryption_to_meta_json, load_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_doc_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", [b for b in BLOCKS if "kind:" in b])
def test_document_examples_load(block: str) -> None:
    assert load_config(block).documents


def test_tag9_example_matches() -> None:
    fragment = next(block for block in BLOCKS if block.startswith("encryption:"))
    config = load_config("apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\n" + fragment)
    document = config.volume("STATE")
    assert document is not None
    json_example = re.search(r"```json\n(.*?)\n```", DOC.read_text(), flags=re.DOTALL)
    assert json_example is not None
    assert encryption_to_meta_json(document.encryption) == json_example.group(1).encode()

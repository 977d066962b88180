"""A config file with no documents is refused: it is what a reader sees of a file still being written
(truncated, not yet filled), and applying it tore down every volume (review of issue 14, F1)."""

from __future__ import annotations

import pytest

from volumed.config import check_config

NO_DOCUMENTS = (
    "the config file holds no documents (empty, or still being written): keeping the volumes as they are"
)


@pytest.mark.parametrize("text", [b"", "", "\n  \n", "# only a comment\n", "---\n", "---\n---\n# x\n"])
def test_a_config_without_documents_is_refused(text: str | bytes) -> None:
    machine, issues = check_config(text)
    assert machine is None
    assert [issue.message for issue in issues] == [NO_DOCUMENTS]


def test_one_document_of_another_kind_is_a_config() -> None:
    machine, issues = check_config(
        "apiVersion: v1alpha1\nkind: NetworkDefaultActionConfig\ningress: accept\n"
    )
    assert issues == []
    assert machine is not None

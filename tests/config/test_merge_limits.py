"""Merge keys (``<<``) are counted as they are flattened, against the expanded-node limit.

A 77 KB config within every limit (one mapping of 5000 keys merged into 3300 mappings) became 16.5 million
pairs before the expanded-node count ran: two minutes and 2.5 GB. Each assertion here is on the error and
where it points: the line and column show how far the loader got before it stopped.
"""

from __future__ import annotations

from volumed.config import check_config
from volumed.config._limits import MAX_EXPANDED_NODES, MAX_YAML_NODES

KEYS = 5000
ANCHOR = "x: &a0 {" + ",".join(f"k{i}: v" for i in range(KEYS)) + "}\n"
LIMIT = f"more than {MAX_EXPANDED_NODES} pairs brought in by merge keys (<<) in the config (the limit)"


def issues_of(text: str) -> list[str]:
    config, issues = check_config(text)
    assert config is None
    return [str(issue) for issue in issues]


def test_a_mapping_merged_into_many_mappings_is_refused_when_the_merged_pairs_pass_the_limit() -> None:
    # the reviewer's bomb: merged 3300 times; the 21st merge passes 100000 pairs
    bomb = "kind: Junk\n" + ANCHOR + "y: [" + ",".join(["{<<: *a0}"] * 3300) + "]\n"
    column = len("y: [") + 20 * len("{<<: *a0},") + 1
    assert issues_of(bomb) == [f"document 1: invalid YAML: line 3, column {column}: {LIMIT}"]


def test_one_merge_of_many_aliases_is_refused_while_it_is_flattened() -> None:
    bomb = "kind: Junk\n" + ANCHOR + "y: {<<: [" + ",".join(["*a0"] * 200) + "]}\n"
    assert issues_of(bomb) == [f"document 1: invalid YAML: line 3, column 4: {LIMIT}"]


def test_an_alias_counts_as_a_node_as_written() -> None:
    aliases = "kind: Junk\nx: &a y\nz: [" + ",".join(["*a"] * MAX_YAML_NODES) + "]\n"
    [issue] = issues_of(aliases)
    assert issue.endswith(f"more than {MAX_YAML_NODES} YAML nodes in the config (the limit)")


def test_merges_within_the_limit_still_work() -> None:
    config, issues = check_config(
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\n"
        "provisioning: {<<: {diskSelector: {match: 'true'}, minSize: 1GiB}, minSize: 2GiB}\n"
    )
    assert issues == []
    assert config is not None
    provisioning = config.user_volumes[0].provisioning
    assert provisioning is not None
    assert str(provisioning.min_size) == "2GiB"  # an explicit key overrides a merged one

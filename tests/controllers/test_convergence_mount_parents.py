"""The settle check's mount-parent map: each volume's nearest configured ancestor target."""

from __future__ import annotations

from pathlib import PurePosixPath

from hypothesis import given
from hypothesis import strategies as st

from volumed.controllers._convergence import _mount_parents

_targets = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d", "e", "f"]),
    st.lists(st.sampled_from(["var", "mnt", "x", "y", "."]), max_size=4).map(lambda p: "/" + "/".join(p)),
    max_size=6,
)


def _by_ancestry(targets: dict[str, str]) -> dict[str, str]:
    """The definition, written out with pathlib's own ancestry test."""
    parents = {}
    for volume_id, target in targets.items():
        above = [
            (len(PurePosixPath(t).parts), v)
            for v, t in targets.items()
            if v != volume_id and PurePosixPath(t) in PurePosixPath(target).parents
        ]
        if above:
            parents[volume_id] = max(above)[1]
    return parents


@given(_targets)
def test_mount_parents_are_the_nearest_ancestor_targets(targets: dict[str, str]) -> None:
    assert _mount_parents(targets) == _by_ancestry(targets)


def test_a_sibling_with_a_common_prefix_is_no_parent() -> None:
    targets = {"var": "/var", "varlib": "/varlib", "mnt": "/var/mnt", "deep": "/var/mnt/x/y", "root": "/"}
    assert _mount_parents(targets) == {"var": "root", "varlib": "root", "mnt": "var", "deep": "mnt"}

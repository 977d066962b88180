"""Random YAML gets clear validation errors or a valid config, never a crash."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from volumed.config import ConfigIssue, MachineConfig, check_config

FIELD_NAMES = [
    "apiVersion",
    "kind",
    "name",
    "provisioning",
    "diskSelector",
    "match",
    "minSize",
    "maxSize",
    "grow",
    "filesystem",
    "type",
    "encryption",
    "provider",
    "keys",
    "slot",
    "static",
    "passphrase",
    "nodeID",
    "kms",
    "endpoint",
    "tpm",
    "options",
    "pcrs",
    "checkSecurebootStatusOnEnroll",
    "lockToState",
    "lockToSTATE",
    "cipher",
    "keySize",
    "blockSize",
    "allowDiscards",
    "pbkdf",
    "memory",
    "iterations",
    "parallel",
    "volumeType",
    "mount",
    "bogus",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "v1alpha1",
            "VolumeConfig",
            "UserVolumeConfig",
            "STATE",
            "EPHEMERAL",
            "luks2",
            "xfs",
            "10GiB",
            "1x",
            "disk.size > 1u",
            "disk.size >",
            "true",
            "partition",
            "argon2id",
            "pbkdf2",
            "",
        ]
    ),
    st.text(max_size=20),
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)), children, max_size=6),
    ),
    max_leaves=30,
)
DOCUMENTS = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["v1alpha1", "v1"]),
        "kind": st.sampled_from(["VolumeConfig", "UserVolumeConfig", "Other"]),
        "name": st.one_of(st.sampled_from(["STATE", "EPHEMERAL", "data", "IMAGECACHE"]), SCALARS),
    },
    optional={
        "provisioning": VALUES,
        "encryption": VALUES,
        "filesystem": VALUES,
        "volumeType": VALUES,
        "bogus": VALUES,
    },
)


def check_result(result: tuple[MachineConfig | None, list[ConfigIssue]]) -> None:
    config, issues = result
    if config is None:
        assert issues
        for issue in issues:
            assert isinstance(issue, ConfigIssue)
            assert issue.message
            assert str(issue)
    else:
        assert issues == []


@given(st.lists(DOCUMENTS, max_size=4))
def test_random_documents(documents: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump_all(documents)
    check_result(check_config(text))


@given(st.lists(VALUES, max_size=3))
def test_random_values(values: list[Any]) -> None:
    check_result(check_config(yaml.safe_dump_all(values)))


@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    check_result(check_config(text))


@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    check_result(check_config(data))


def test_recursive_aliases_are_an_error_not_a_crash() -> None:
    text = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\nencryption: &a {keys: [*a]}\n"
    config, issues = check_config(text)
    assert config is None
    assert [str(issue) for issue in issues] == [
        "document 1: too large: more than 100000 nodes in the config with aliases expanded (the limit),"
        " or recursive aliases"
    ]


def test_alias_bombs_are_refused_quickly() -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "\n".join(lines) + "\nkind: VolumeConfig\nencryption: {options: *l8}\n"
    config, issues = check_config(text)
    assert config is None
    assert [str(issue) for issue in issues] == [
        "document 1: too large: more than 100000 nodes in the config with aliases expanded (the limit),"
        " or recursive aliases"
    ]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    config, issues = check_config("[" * 5000 + "]" * 5000)
    assert config is None
    assert [str(issue) for issue in issues] == [
        "document 1: invalid YAML: line 1, column 65: nested deeper than 64 levels (the limit)"
    ]

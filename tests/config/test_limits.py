"""Validation is bounded: a config past a limit gets one clear error naming it, quickly, not a stall.

Before the limits, 5 levels of nested CEL macros over 10-item lists took 37 s to validate (8 levels: hours)
and 200,000 tiny documents about 50 s. No test here times anything: each asserts the error.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest

from volumed.config import MAX_CONFIG_BYTES, SelectorError, check_config, compile_selector, read_config_file
from volumed.config._cel import _SAMPLE_DISK
from volumed.config._limits import (
    MAX_CONFIG_SELECTOR_CHARACTERS,
    MAX_CONFIG_SELECTOR_STEPS,
    MAX_DOCUMENTS,
    MAX_EXPANDED_NODES,
    MAX_SELECTOR_LENGTH,
    MAX_SELECTOR_MACRO_DEPTH,
    MAX_SELECTOR_STEPS,
    MAX_SELECTOR_TREE_DEPTH,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
)

if TYPE_CHECKING:
    from pathlib import Path

STATE = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\n"
TEN = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"


def nested_macros(levels: int) -> str:
    """``TEN.all(x0, TEN.all(x1, ... true))``: 10 ** levels evaluations of the innermost expression."""
    expression = "true"
    for level in range(levels):
        expression = f"{TEN}.all(x{level}, {expression})"
    return expression


def messages(text: str | bytes) -> list[str]:
    config, issues = check_config(text)
    assert config is None
    return [str(issue) for issue in issues]


def test_config_larger_than_the_limit() -> None:
    text = STATE + "# " + "x" * MAX_CONFIG_BYTES + "\n"
    assert messages(text) == [f"config: too large: more than {MAX_CONFIG_BYTES} bytes (the limit)"]
    assert messages(text.encode()) == [f"config: too large: more than {MAX_CONFIG_BYTES} bytes (the limit)"]


def test_config_at_the_size_limit_is_read() -> None:
    text = STATE + "# " + "x" * (MAX_CONFIG_BYTES - len(STATE) - 3) + "\n"
    assert len(text) == MAX_CONFIG_BYTES
    config, issues = check_config(text)
    assert issues == []
    assert config is not None


def test_only_one_byte_past_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"#" * (3 * MAX_CONFIG_BYTES))
    assert len(read_config_file(path)) == MAX_CONFIG_BYTES + 1
    assert len(read_config_file(io.BytesIO(b"#" * (3 * MAX_CONFIG_BYTES)))) == MAX_CONFIG_BYTES + 1


def test_200000_tiny_documents() -> None:
    """The reported case (it took about 50 s): refused by size before any parsing."""
    assert messages("---\n{}\n" * 200_000) == [
        f"config: too large: more than {MAX_CONFIG_BYTES} bytes (the limit)"
    ]


def test_too_many_documents() -> None:
    assert messages("---\n{}\n" * (MAX_DOCUMENTS + 1)) == [
        f"config: too many documents: more than {MAX_DOCUMENTS} (the limit)"
    ]
    config, issues = check_config("---\n{}\n" * MAX_DOCUMENTS)
    assert (issues, config is not None) == ([], True)


def test_too_many_yaml_nodes() -> None:
    [message] = messages("a: [" + "1, " * MAX_YAML_NODES + "]\n")
    assert message.startswith("document 1: invalid YAML: line 1, column ")
    assert message.endswith(f": more than {MAX_YAML_NODES} YAML nodes in the config (the limit)")


def test_nodes_are_counted_over_all_documents() -> None:
    half = "a: [" + "1, " * (MAX_YAML_NODES // 2) + "]\n"
    [message] = messages(half + "---\n" + half)
    assert message.startswith("document 2: invalid YAML: ")


def test_nesting_deeper_than_the_limit() -> None:
    assert messages("a: " + "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1) + "\n") == [
        f"document 1: invalid YAML: line 1, column {MAX_YAML_DEPTH + 3}: nested deeper than {MAX_YAML_DEPTH}"
        " levels (the limit)"
    ]
    config, issues = check_config("a: " + "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1) + "\n")
    assert (issues, config is not None) == ([], True)


def test_alias_expansion_is_bounded_over_all_documents() -> None:
    """Each document below the expanded-node limit, together above it."""
    bomb = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 5)
    )  # 10**5 + ... nodes: more than the limit on its own
    small = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 4)
    )  # about 11,000 nodes
    assert messages(bomb) == [
        f"document 1: too large: more than {MAX_EXPANDED_NODES} nodes in the config with aliases expanded"
        " (the limit), or recursive aliases"
    ]
    [message] = messages("---\n".join([small] * (MAX_EXPANDED_NODES // 10_000)))
    document = int(message.removeprefix("document ").split(":", 1)[0])
    assert document > 1
    assert message == messages(bomb)[0].replace("document 1:", f"document {document}:")


def test_selector_longer_than_the_limit() -> None:
    with pytest.raises(
        SelectorError, match=rf"^too long: more than {MAX_SELECTOR_LENGTH} characters \(the limit\)$"
    ):
        compile_selector("true" + " " * MAX_SELECTOR_LENGTH)


def test_the_reported_nested_macros_are_refused() -> None:
    """5 levels took 37 s to validate, 8 levels hours: refused before any evaluation."""
    for levels in (MAX_SELECTOR_MACRO_DEPTH + 1, 5, 8):
        with pytest.raises(
            SelectorError, match=r"^macros nested more than 2 levels deep at line 1, column \d+ "
        ):
            compile_selector(nested_macros(levels))
    assert compile_selector(nested_macros(MAX_SELECTOR_MACRO_DEPTH)).matches(_SAMPLE_DISK)


def test_macros_one_after_the_other_are_not_nested() -> None:
    expression = " && ".join([nested_macros(MAX_SELECTOR_MACRO_DEPTH)] * 3)
    assert compile_selector(expression).matches(_SAMPLE_DISK)
    ranged = f"{TEN}.map(a, a * 2).filter(b, b > 4).exists(c, {TEN}.exists(d, c == d))"
    assert compile_selector(ranged).matches(_SAMPLE_DISK)


def test_a_selector_deeper_than_the_limit() -> None:
    depth = MAX_SELECTOR_TREE_DEPTH // 10 + 5
    with pytest.raises(SelectorError, match=rf"^nested too deep: more than {MAX_SELECTOR_TREE_DEPTH} levels"):
        compile_selector("(" * depth + "true" + ")" * depth)


def test_a_selector_costlier_than_the_limit() -> None:
    """Two levels of macros over long lists: allowed by shape, stopped by the step budget."""
    items = "[" + ", ".join(["1"] * 100) + "]"
    with pytest.raises(
        SelectorError, match=rf"^evaluation takes more than {MAX_SELECTOR_STEPS} steps \(the limit\)$"
    ):
        compile_selector(f"{items}.all(a, {items}.all(b, a == b || true))")


def test_the_step_limit_applies_to_each_disk() -> None:
    """A selector within budget on the sample disk but past it on a disk with many symlinks fails clearly."""
    import dataclasses

    selector = compile_selector("disk.symlinks.all(s, disk.symlinks.all(t, s != t || s == t))")
    assert selector.matches(_SAMPLE_DISK)
    many = dataclasses.replace(_SAMPLE_DISK, symlinks=tuple(f"/dev/disk/by-id/l{i}" for i in range(300)))
    with pytest.raises(
        SelectorError, match=rf"^disk selector: evaluation takes more than {MAX_SELECTOR_STEPS} steps"
    ):
        selector.matches(many)


def test_a_selector_past_a_limit_is_a_config_error() -> None:
    text = (
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\n"
        f"provisioning: {{diskSelector: {{match: '{nested_macros(5)}'}}, maxSize: 1GiB}}\n"
    )
    [message] = messages(text)
    assert message.startswith(
        "UserVolumeConfig/data: provisioning.diskSelector.match: disk selector is invalid:"
        " macros nested more than 2 levels deep"
    )


def user_volume(index: int, selector: str) -> str:
    return (
        f"apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: v{index}\n"
        f"provisioning: {{diskSelector: {{match: '{selector}'}}, maxSize: 1GiB}}\n"
    )


def test_the_selectors_of_a_config_share_a_step_budget() -> None:
    """Each selector within its own limit, but a config may have 1024 of them: together they are bounded."""
    items = "[" + ", ".join(["1"] * 15) + "]"
    selector = f"{items}.all(a, {items}.all(b, true))"  # about 4,600 steps, twice per validation
    text = "---\n".join(user_volume(index, selector) for index in range(40))
    issues = messages(text)
    assert issues
    assert set(issues) == {
        f"UserVolumeConfig/v{index}: provisioning.diskSelector.match: disk selector is invalid: the config's"
        f" selectors take more than {MAX_CONFIG_SELECTOR_STEPS} evaluation steps together (the limit)"
        for index in range(40 - len(issues), 40)
    }


def test_the_selectors_of_a_config_share_a_length_budget() -> None:
    selector = 'disk.model != "' + "x" * 940 + '"'
    count = MAX_CONFIG_SELECTOR_CHARACTERS // len(selector) + 2
    issues = messages("---\n".join(user_volume(index, selector) for index in range(count)))
    assert issues == [
        f"UserVolumeConfig/v{index}: provisioning.diskSelector.match: disk selector is invalid: the config's"
        f" selectors have more than {MAX_CONFIG_SELECTOR_CHARACTERS} characters together (the limit)"
        for index in range(count - 2, count)
    ]

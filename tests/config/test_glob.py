"""CEL ``glob()``: Go's ``filepath.Match`` without backtracking, its work counted in the selector's steps.

It was a Python regex translation: ``glob("*a*a*a*a*a*a*a*ab", "a" * 60)`` backtracked for minutes (holding
the GIL, so `volumed run`'s API stalled), and the translation differed from Go on some classes and errors.
"""

from __future__ import annotations

import pytest

from volumed.config import DiskDescription, SelectorError, compile_selector
from volumed.config._glob import glob_match

BAD = "bad pattern"
# Go's path/filepath match_test.go (matchTests), Unix separator.
GO_VECTORS = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[]a]", "]", BAD),
    ("[-]", "-", BAD),
    ("[x-]", "x", BAD),
    ("[x-]", "-", BAD),
    ("[x-]", "z", BAD),
    ("[-x]", "x", BAD),
    ("[-x]", "-", BAD),
    ("[-x]", "a", BAD),
    ("\\", "a", BAD),
    ("[a-b-c]", "a", BAD),
    ("[", "a", BAD),
    ("[^", "a", BAD),
    ("[^bc", "a", BAD),
    ("a[", "a", BAD),
    ("a[", "ab", BAD),
    ("a[", "x", BAD),
    ("a/b[", "x", BAD),
    ("*x", "xxx", True),
    # Go matches each chunk at its leftmost place and never retries an earlier star: a class may match `/`.
    ("*[/x]*c", "axb/c", False),
    ("[^a]", "/", True),
]


class Work:
    def __init__(self) -> None:
        self.units = 0

    def __call__(self, units: int) -> None:
        self.units += units


@pytest.mark.parametrize(("pattern", "name", "expected"), GO_VECTORS)
def test_glob_matches_as_go_filepath_match(pattern: str, name: str, expected: bool | str) -> None:
    if expected == BAD:
        with pytest.raises(SelectorError, match=r"^glob: syntax error in pattern$"):
            glob_match(pattern, name, Work())
    else:
        assert glob_match(pattern, name, Work()) is expected


@pytest.mark.parametrize(
    ("pattern", "name"),
    [
        ("*a" * 30 + "b", "a" * 60),  # the reviewer's: exponential for a backtracking regex
        ("*a" * 200 + "b", "a" * 1000),
        ("*" + "a" * 200 + "b", "a" * 1000),
        ("*a*a*a*a*a*a*a*ab", "a" * 60 + "/" + "a" * 60),
    ],
)
def test_glob_work_is_at_most_pattern_times_name(pattern: str, name: str) -> None:
    work = Work()
    assert glob_match(pattern, name, work) is False
    assert work.units <= (len(pattern) + 1) * (len(name) + 1)


def test_the_reviewers_glob_selector_is_answered() -> None:
    selector = compile_selector(f'glob("{"*a" * 30}b", "{"a" * 60}")')
    assert selector.matches(DiskDescription(dev_path="/dev/sda", size=1)) is False


def test_a_glob_past_the_step_limit_is_refused() -> None:
    # 200 comparisons at each of 100000 places: the glob's work counts in the selector's steps.
    selector = compile_selector(f'glob("*{"a" * 200}b", disk.model)')
    disk = DiskDescription(dev_path="/dev/sda", size=1, model="a" * 100_000)
    with pytest.raises(SelectorError, match=r"^disk selector: evaluation takes more than 10000 steps"):
        selector.matches(disk)
    assert selector.matches(DiskDescription(dev_path="/dev/sda", size=1, model="a" * 200 + "b"))

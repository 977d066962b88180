"""`volumed demo --workdir`: a parent folder another user controls is refused (they could swap the workdir
after its check), a sticky one (as /tmp) is not; the folder booted is the folder checked."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from click.testing import CliRunner

from volumed.cli import volumed
from volumed.cli.demo import DEMO_FILES, DemoWorkdirError, check_same_workdir, check_workdir, prepare


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(volumed, list(args), catch_exceptions=False)


def _nobody() -> int:
    return pwd.getpwnam("nobody").pw_uid


def _walk(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: os.chown(p, _nobody(), -1), "owned by uid {nobody}, who could swap the workdir"),
        (
            lambda p: os.chmod(p, 0o777),
            "that others may write to (mode 0777, not sticky), who could swap the workdir",
        ),
        (
            lambda p: os.chmod(p, 0o775),
            "that others may write to (mode 0775, not sticky), who could swap the workdir",
        ),
    ],
    ids=["parent-owned-by-nobody", "world-writable-parent", "group-writable-parent"],
)
@pytest.mark.parametrize("depth", [1, 2], ids=["parent", "grandparent"])
def test_a_parent_others_control_is_refused_and_nothing_is_written(
    tmp_path: Path, setup: object, message: str, depth: int
) -> None:
    unsafe = tmp_path / "shared"
    unsafe.mkdir(mode=0o755)
    parent = unsafe / "sub" if depth == 2 else unsafe
    parent.mkdir(mode=0o755, exist_ok=True)
    setup(unsafe)  # type: ignore[operator]
    workdir = parent / "demo"
    before = _walk(tmp_path)
    result = invoke("demo", "--workdir", str(workdir))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: demo workdir {workdir} has a parent folder {unsafe} "
        f"{message.format(nobody=_nobody())}; refusing to use it\n"
    )
    assert _walk(tmp_path) == before


def test_missing_parents_under_an_unsafe_folder_are_not_made(tmp_path: Path) -> None:
    unsafe = tmp_path / "shared"
    unsafe.mkdir(mode=0o755)
    os.chown(unsafe, _nobody(), -1)
    with pytest.raises(DemoWorkdirError, match="has a parent folder"):
        prepare(unsafe / "a" / "b" / "demo")
    assert list(unsafe.iterdir()) == []


def test_a_sticky_world_writable_parent_is_accepted(tmp_path: Path) -> None:
    """As /tmp: only the owner of an entry can rename it, and the workdir is ours."""
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    workdir = sticky / "volumed-demo"
    prepare(workdir)
    assert sorted(p.name for p in workdir.iterdir()) == sorted(DEMO_FILES)


def test_a_sticky_parent_with_a_folder_of_another_user_below_is_refused(tmp_path: Path) -> None:
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    theirs = sticky / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, _nobody(), -1)
    with pytest.raises(DemoWorkdirError, match=f"has a parent folder {theirs} owned by uid {_nobody()}"):
        prepare(theirs / "demo")
    assert list(theirs.iterdir()) == []


def test_symlinked_parents_are_resolved_and_the_real_ones_checked(tmp_path: Path) -> None:
    """A link in a safe place to a folder another user controls does not hide that folder."""
    unsafe = tmp_path / "shared"
    unsafe.mkdir(mode=0o755)
    os.chown(unsafe, _nobody(), -1)
    (tmp_path / "link").symlink_to(unsafe)
    result = invoke("demo", "--workdir", str(tmp_path / "link" / "demo"))
    assert result.exit_code == 1
    assert f"Error: demo workdir {unsafe / 'demo'} has a parent folder {unsafe} owned by" in result.output
    assert list(unsafe.iterdir()) == []


def test_the_default_workdir_parent_tmp_is_accepted() -> None:
    """/tmp (root's, sticky 1777) is a safe parent of the default /tmp/volumed-demo."""
    from volumed.cli.demo import _safe_parents

    _safe_parents(Path("/tmp/volumed-demo"))


def test_a_workdir_replaced_after_its_check_is_refused(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    identity = check_workdir(workdir)
    os.close(check_same_workdir(workdir, identity))
    workdir.rename(tmp_path / "demo.old")
    workdir.mkdir(mode=0o700)
    with pytest.raises(DemoWorkdirError, match=f"demo workdir {workdir} changed after it was checked"):
        check_same_workdir(workdir, identity)
    workdir.rmdir()
    workdir.symlink_to(tmp_path / "demo.old")
    with pytest.raises(DemoWorkdirError, match="changed after it was checked"):
        check_same_workdir(workdir, identity)

"""`volumed demo`'s workdir: private (0700, ours); 0600 files made without following planted symlinks."""

from __future__ import annotations

import os
import pwd
import stat
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from volumed.cli import volumed
from volumed.cli.demo import DEMO_FILES, DemoWorkdirError, prepare

if TYPE_CHECKING:
    from pathlib import Path


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(volumed, list(args), catch_exceptions=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_new_workdir_is_0700_and_every_file_0600(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    config, disks, node_uuid = prepare(workdir)
    assert mode(workdir) == 0o700
    assert sorted(p.name for p in workdir.iterdir()) == sorted(DEMO_FILES)
    for name in DEMO_FILES:
        assert stat.S_ISREG(os.lstat(workdir / name).st_mode)
        assert mode(workdir / name) == 0o600, name
    assert (workdir / "node-uuid").read_text() == node_uuid
    assert config == workdir / "config.yaml"
    assert disks == [str(workdir / "node.img"), str(workdir / "data.img")]


def test_an_earlier_own_workdir_is_reused_and_made_private(tmp_path: Path) -> None:
    """A workdir of an earlier run (0755, 0644 files, as older versions left it) is recreated 0700/0600."""
    workdir = tmp_path / "demo"
    _, _, first = prepare(workdir)
    os.chmod(workdir, 0o755)
    for name in DEMO_FILES:
        os.chmod(workdir / name, 0o644)
    _, _, second = prepare(workdir)
    assert first != second
    assert mode(workdir) == 0o700
    assert all(mode(workdir / name) == 0o600 for name in DEMO_FILES)


@pytest.mark.parametrize("name", ["node.img", "data.img", "config.yaml", "node-uuid"])
def test_a_symlink_planted_in_the_workdir_is_not_followed(tmp_path: Path, name: str) -> None:
    workdir = tmp_path / "demo"
    workdir.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_bytes(b"root's file\n")
    os.chmod(victim, 0o644)
    (workdir / name).symlink_to(victim)
    prepare(workdir)
    assert victim.read_bytes() == b"root's file\n"
    assert mode(victim) == 0o644
    assert stat.S_ISREG(os.lstat(workdir / name).st_mode)
    assert mode(workdir / name) == 0o600


def _nobody() -> int:
    return pwd.getpwnam("nobody").pw_uid


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: os.chown(p, _nobody(), -1), "is owned by uid"),
        (lambda p: os.chmod(p, 0o777), "is group- or world-writable (mode 0777)"),
        (lambda p: os.chmod(p, 0o1777), "is group- or world-writable (mode 1777)"),
        (lambda p: os.chmod(p, 0o770), "is group- or world-writable (mode 0770)"),
    ],
    ids=["other-owner", "world-writable", "sticky-world-writable", "group-writable"],
)
def test_a_workdir_others_control_is_refused_and_nothing_is_written(
    tmp_path: Path, setup: object, message: str
) -> None:
    workdir = tmp_path / "demo"
    workdir.mkdir()
    setup(workdir)  # type: ignore[operator]
    before = os.lstat(workdir)
    result = invoke("demo", "--workdir", str(workdir))
    assert result.exit_code == 1
    assert f"Error: demo workdir {workdir} {message}" in result.output
    assert "refusing to use it" in result.output
    assert list(workdir.iterdir()) == []
    after = os.lstat(workdir)
    assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)


def test_a_symlinked_workdir_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    workdir = tmp_path / "demo"
    workdir.symlink_to(elsewhere)
    result = invoke("demo", "--workdir", str(workdir))
    assert result.exit_code == 1
    assert f"Error: demo workdir {workdir} is a symlink; refusing to use it" in result.output
    assert list(elsewhere.iterdir()) == []


def test_a_workdir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    workdir.write_bytes(b"x")
    with pytest.raises(DemoWorkdirError, match="is not a directory; refusing to use it"):
        prepare(workdir)
    assert workdir.read_bytes() == b"x"


def test_a_folder_where_a_demo_file_goes_is_a_clear_error(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    (workdir / "node.img").mkdir(parents=True)
    os.chmod(workdir, 0o700)
    result = invoke("demo", "--workdir", str(workdir))
    assert result.exit_code == 1
    assert result.output == f"Error: demo workdir {workdir}: {workdir}/node.img: Is a directory\n"

"""`volumed run` at start, before it writes anything: who may run it (root, one instance per disk and state
directory), where the node UUID comes from, and that it cannot dump core."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from tests._tools import require_root, require_tool
from volumed.cli import volumed
from volumed.storage import disklayout
from volumed.storage.blockdev import lock_disk

if TYPE_CHECKING:
    from collections.abc import Iterator

VOLUMED = str(Path(sys.executable).parent / "volumed")
MIB = 1024 * 1024
START_LIMIT = 60.0
CONFIG = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: STATE
encryption:
  provider: luks2
  keys: [{slot: 0, static: {passphrase: state-secret}}]
  pbkdf: {type: argon2id, memory: 32, iterations: 4, parallel: 1}
---
apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
encryption:
  provider: luks2
  keys: [{slot: 0, static: {passphrase: ephemeral-secret}}]
  pbkdf: {type: argon2id, memory: 32, iterations: 4, parallel: 1}
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_argv(workdir: Path, *extra: str, state: str = "state") -> list[str]:
    return [
        VOLUMED, "run", "--config", str(workdir / "config.yaml"), "--disk", str(workdir / "node.img"),
        "--backend", "fuse", "--root", str(workdir / "root"), "--state-dir", str(workdir / state), *extra,
    ]  # fmt: skip


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory any user may enter (pytest's tmp_path is root's alone), with a node image and a config."""
    path = Path(tempfile.mkdtemp(prefix="volumed-run-start-"))
    try:
        path.chmod(0o755)
        disklayout.create_disk_image(path / "node.img", 256 * MIB, state_size=16 * MIB)
        (path / "config.yaml").write_text(CONFIG)
        yield path
    finally:
        shutil.rmtree(path)


@contextlib.contextmanager
def first_instance(workdir: Path) -> Iterator[subprocess.Popen[str]]:
    """`volumed run` (no --once, no config) owning the image until the block ends; entered once it holds its
    locks (its pid is in the state directory's lock file)."""
    argv = run_argv(workdir)
    argv[argv.index("--config") + 1] = str(workdir / "no-config.yaml")
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = workdir / "state" / "volumed.lock"
    deadline = time.monotonic() + START_LIMIT  # a safeguard against a hang, not a timing assumption
    try:
        while not (lock.exists() and lock.read_text().startswith(f"{process.pid} ")):
            assert process.poll() is None, f"the first instance ended: {process.communicate()[1]}"
            assert time.monotonic() < deadline, f"no lock taken after {START_LIMIT} s"
            time.sleep(0.05)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()


def test_a_non_root_user_is_refused_before_anything_is_written(workdir: Path) -> None:
    """Issue 15 item 7: as the owner of the image, not root, it wrote META and formatted STATE and EPHEMERAL,
    and only then failed on /dev/loop-control."""
    require_root()
    setpriv = require_tool("setpriv")
    for name in ("state", "root"):
        (workdir / name).mkdir()
    subprocess.run(["chown", "-R", "nobody:nogroup", str(workdir)], check=True)
    before = digest(workdir / "node.img")
    result = subprocess.run(
        [setpriv, "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
         *run_argv(workdir, "--once", "--timeout", "30")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "Error: cannot run here, nothing was written: activating and mounting volumes needs root "
        "(CAP_SYS_ADMIN); this process (uid 65534) does not have it"
    )
    assert digest(workdir / "node.img") == before
    assert os.listdir(workdir / "state") == []


@pytest.mark.parametrize("who", ["mode 0777", "owner nobody", "lock file of nobody"])
def test_a_state_dir_another_user_may_write_is_refused(workdir: Path, who: str) -> None:
    """Review 3 (attack_statedir.sh): a --state-dir of another user (or open to all) was used as it was: its
    owner could hold volumed.lock (keeping every run out, any text printed as the holder) or swap files."""
    require_root()
    state = workdir / "state"
    state.mkdir(mode=0o700)
    if who == "mode 0777":
        state.chmod(0o777)
    elif who == "owner nobody":
        os.chown(state, 65534, 65534)
    else:
        (state / "volumed.lock").write_text("1 \x1b[31mvolumed run\n")
        os.chown(state / "volumed.lock", 65534, 65534)
    result = subprocess.run(
        run_argv(workdir, "--once", "--timeout", "30"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: cannot run here, nothing was written: the "), last
    assert "only it may write to" in last, last
    assert "\x1b" not in last, last
    assert not (state / "fuse").exists()


def test_a_non_root_user_with_cap_sys_admin_is_refused_with_exit_3(workdir: Path) -> None:
    """Review 3 (attack_nonroot.sh): with CAP_SYS_ADMIN and the disk group it got exit 1 on the lock directory
    (which told it to remove the directory); the docs promise 3 when it cannot run here."""
    require_root()
    setpriv = require_tool("setpriv")
    for name in ("state", "root"):
        (workdir / name).mkdir()
    subprocess.run(["chown", "-R", "nobody:nogroup", str(workdir)], check=True)
    lock_disk(workdir / "node.img").release()  # the lock directory exists, root's, as on a node
    before = digest(workdir / "node.img")
    result = subprocess.run(
        [setpriv, "--reuid", "nobody", "--regid", "nogroup", "--groups", "disk", "--inh-caps", "+sys_admin",
         "--ambient-caps", "+sys_admin", *run_argv(workdir, "--once", "--timeout", "30")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: cannot run here, nothing was written: the lock directory "), last
    assert "remove it" not in last
    assert digest(workdir / "node.img") == before


def test_a_second_instance_on_the_same_disk_is_refused_naming_the_first(workdir: Path) -> None:
    """Issue 15 item 5: with another --state-dir, a second instance opened every volume again."""
    require_root()
    with first_instance(workdir) as first:
        before = digest(workdir / "node.img")
        result = subprocess.run(
            run_argv(workdir, "--once", "--timeout", "30", state="state2"),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 5, result.stderr
        assert result.stderr.splitlines()[-1] == (
            f"Error: disk {workdir / 'node.img'} is in use by volumed run (pid {first.pid}); nothing was done"
        )
        assert digest(workdir / "node.img") == before
        assert not (workdir / "state2" / "fuse").exists()


def test_a_second_instance_with_the_same_state_dir_is_refused(workdir: Path) -> None:
    require_root()
    other = workdir / "other.img"
    disklayout.create_disk_image(other, 256 * MIB, state_size=16 * MIB)
    with first_instance(workdir) as first:
        argv = run_argv(workdir, "--once", "--timeout", "30")
        argv[argv.index("--disk") + 1] = str(other)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 5, result.stderr
        assert result.stderr.splitlines()[-1] == (
            f"Error: state directory {workdir / 'state'} is in use by volumed run (pid {first.pid}); "
            "nothing was done"
        )


def test_the_same_disk_named_twice_is_one_disk(workdir: Path) -> None:
    """A hard link of the image is the same disk: not a second owner (refused by itself), nor a 2nd lock."""
    require_root()
    os.link(workdir / "node.img", workdir / "link.img")
    # --once ends as soon as STATE is found missing (a few tens of ms); the timeout only bounds a hang
    argv = run_argv(workdir, "--once", "--timeout", "30", "--disk", str(workdir / "link.img"))
    argv[argv.index("--config") + 1] = str(workdir / "no-config.yaml")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 7, result.stderr  # no config, no tag 9, STATE blank: missing; but it ran
    assert "in use" not in result.stderr


def test_wipe_refuses_a_disk_a_running_instance_owns(workdir: Path) -> None:
    """Nothing is open on it yet (no config), but `volumed run` owns it: wipe must not write under it."""
    lock = lock_disk(workdir / "node.img", owner="volumed run")
    try:
        before = digest(workdir / "node.img")
        result = CliRunner().invoke(
            volumed,
            ["wipe", str(workdir / "node.img"), "--system-labels-to-wipe", "STATE"],
            catch_exceptions=False,
        )
        assert result.exit_code == 5, result.output
        assert f"is on a disk in use by volumed run (pid {os.getpid()})" in result.output
        assert digest(workdir / "node.img") == before
    finally:
        lock.release()
    again = CliRunner().invoke(
        volumed,
        ["wipe", str(workdir / "node.img"), "--system-labels-to-wipe", "STATE"],
        catch_exceptions=False,
    )
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (["disk", "create", "{image}", "--size", "256MiB", "--layout", "system", "--force"], 1),
        (["luks", "format", "--batch-mode", "--key-file", "{key}", "--pbkdf", "pbkdf2",
          "--pbkdf-force-iterations", "1000", "{image}"], 5),
    ],
)  # fmt: skip
def test_disk_create_and_luks_format_refuse_a_disk_a_running_instance_owns(
    workdir: Path, command: list[str], code: int
) -> None:
    (workdir / "key").write_bytes(b"secret")
    args = [word.format(image=workdir / "node.img", key=workdir / "key") for word in command]
    lock = lock_disk(workdir / "node.img", owner="volumed run")
    try:
        before = digest(workdir / "node.img")
        result = CliRunner().invoke(volumed, args, catch_exceptions=False)
        assert result.exit_code == code, result.output
        assert f"in use by volumed run (pid {os.getpid()})" in result.output
        assert digest(workdir / "node.img") == before
    finally:
        lock.release()


@contextlib.contextmanager
def loop_over_removed_name(workdir: Path, *, offset: int = 0) -> Iterator[str]:
    """A loop device over node.img through a hard link whose name is then removed (sysfs: `` (deleted)``)."""
    from volumed.storage import loop

    os.link(workdir / "node.img", workdir / "alias.img")
    with loop.attached(workdir / "alias.img", offset=offset) as device:
        (workdir / "alias.img").unlink()
        yield device.path


@pytest.mark.parametrize(
    ("command", "offset"),
    [
        (["wipe", "--system-labels-to-wipe", "STATE", "--yes", "{device}"], 0),
        (["luks", "format", "--batch-mode", "--key-file", "{key}", "--pbkdf", "pbkdf2",
          "--pbkdf-force-iterations", "1000", "{device}"], 16 * MIB),
    ],
)  # fmt: skip
def test_a_loop_device_over_a_removed_name_of_an_owned_disk_is_refused(
    workdir: Path, command: list[str], offset: int
) -> None:
    """Review 3 (attack_wipe_alias.sh): the lock key of such a loop device was ``block-7:N``, so wipe and luks
    format destroyed a mounted volume of the running instance."""
    require_root()
    (workdir / "key").write_bytes(b"secret")
    with first_instance(workdir) as first, loop_over_removed_name(workdir, offset=offset) as device:
        before = digest(workdir / "node.img")
        args = [word.format(device=device, key=workdir / "key") for word in command]
        result = CliRunner().invoke(volumed, args, catch_exceptions=False)
        assert result.exit_code == 5, result.output
        assert f"in use by volumed run (pid {first.pid})" in result.output
        assert digest(workdir / "node.img") == before


def test_a_second_instance_given_a_loop_device_over_a_removed_name_is_refused(workdir: Path) -> None:
    """Review 3 (attack_alias.sh, loop_deleted_name): the second run opened every volume again."""
    require_root()
    with first_instance(workdir) as first, loop_over_removed_name(workdir) as device:
        argv = run_argv(workdir, "--once", "--timeout", "30", state="state2")
        argv[argv.index("--disk") + 1] = device
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 5, result.stderr
        assert result.stderr.splitlines()[-1] == (
            f"Error: disk {device} is in use by volumed run (pid {first.pid}); nothing was done"
        )


def test_volumed_run_cannot_dump_core(workdir: Path) -> None:
    """Issue 15 item 11: a forced core of `volumed run` held volume keys."""
    require_root()
    with first_instance(workdir) as first:
        limits = Path(f"/proc/{first.pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert line.split()[4:6] == ["0", "0"], line


# --node-uuid-file (issue 15 item 10: --node-uuid is in /proc/<pid>/cmdline for every user)


def invoke_run(*args: str) -> tuple[int, str]:
    result = subprocess.run([VOLUMED, "run", *args], capture_output=True, text=True, timeout=60, check=False)
    return result.returncode, result.stderr


def test_node_uuid_and_node_uuid_file_exclude_each_other(tmp_path: Path) -> None:
    uuid_file = tmp_path / "node-uuid"
    uuid_file.write_text("a3c9b1f2-0000-4000-8000-000000000001\n")
    state = tmp_path / "state"
    code, stderr = invoke_run(
        "--node-uuid", "x", "--node-uuid-file", str(uuid_file), "--once", "--state-dir", str(state)
    )
    assert code == 2
    assert stderr.splitlines()[-1] == "Error: --node-uuid and --node-uuid-file exclude each other: give one"
    assert not state.exists()


@pytest.mark.parametrize(
    "content", [b"", b"\n", b"two\nlines\n", b"with blank\n", b"\xff\xfe\n", b"x" * 300, b"tab\there"]
)
def test_a_node_uuid_file_without_one_uuid_is_a_usage_error_that_does_not_echo_it(
    tmp_path: Path, content: bytes
) -> None:
    uuid_file = tmp_path / "node-uuid"
    uuid_file.write_bytes(content)
    state = tmp_path / "state"
    code, stderr = invoke_run("--node-uuid-file", str(uuid_file), "--once", "--state-dir", str(state))
    assert code == 2
    assert stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--node-uuid-file': {uuid_file} does not hold a node UUID: "
        "one line without blanks (at most 256 characters) is expected"
    )
    assert not state.exists()


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo"])
def test_a_node_uuid_file_that_is_not_a_regular_file_is_refused_before_a_read(
    tmp_path: Path, kind: str
) -> None:
    """Review 3 (attack_uuidfile.sh): /dev/zero grew memory without bound, a FIFO hung the start."""
    path = Path(kind) if kind.startswith("/") else tmp_path / kind
    if kind == "fifo":
        os.mkfifo(path)
    state = tmp_path / "state"
    code, stderr = invoke_run("--node-uuid-file", str(path), "--once", "--state-dir", str(state))
    assert code == 2, stderr
    assert stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--node-uuid-file': cannot read {path}: not a regular file"
    )
    assert not state.exists()


def test_a_huge_node_uuid_file_is_not_read_whole(tmp_path: Path) -> None:
    """Review 3: a 1 GB file was read whole. Here it is read under a 512 MiB address-space limit."""

    uuid_file = tmp_path / "node-uuid"
    with uuid_file.open("wb") as out:
        out.truncate(1 << 30)
    limit = 512 * MIB
    result = subprocess.run(  # prlimit, not a preexec_fn: gRPC threads make Python after fork unsafe
        ["prlimit", f"--as={limit}", "--", VOLUMED, "run", "--node-uuid-file", str(uuid_file), "--once",
         "--state-dir", str(tmp_path / "s")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1].endswith(f"{uuid_file} does not hold a node UUID: "
        "one line without blanks (at most 256 characters) is expected")  # fmt: skip


def test_a_missing_node_uuid_file_is_a_usage_error(tmp_path: Path) -> None:
    code, stderr = invoke_run("--node-uuid-file", str(tmp_path / "nope"), "--once")
    assert code == 2
    assert "'--node-uuid-file'" in stderr
    assert "does not exist" in stderr


def test_the_help_says_to_prefer_the_file() -> None:
    result = CliRunner().invoke(volumed, ["run", "--help"], catch_exceptions=False)
    assert "prefer --node-uuid-file" in " ".join(result.output.split())

"""`volumed run` as an init starts it: relative paths, the node UUID from a file, one owner per disk while
volumes are open, key holders that cannot dump core, and what a `kill -9` left that no volume takes over."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from tests.system.lifecycle._node import (
    FUSE_SERVER_MODULE,
    Node,
    cryptsetup_opens,
    node_id_key,
    static_key,
    volume_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

RUN_LIMIT = 120.0


def run_once(node: Node, argv: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_LIMIT, check=False, cwd=cwd)


def test_relative_paths_work_on_the_fuse_backend(node: Node) -> None:
    """Issue 15 item 13: with a relative --state-dir every encrypted volume failed ("fuse: bad mount point
    `state/fuse/luks2-STATE'"): the FUSE servers run from "/"."""
    node.write_config(
        volume_config("STATE", [static_key(0, "s")]), volume_config("EPHEMERAL", [static_key(0, "e")])
    )
    argv = node.run_argv()
    for option, path in (
        ("--config", "config.yaml"),
        ("--state-dir", "run"),
        ("--root", "root"),
    ):
        argv[argv.index(option) + 1] = path
    argv[argv.index("--disk") + 1] = "system.img"
    result = run_once(node, argv, cwd=node.workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not node.leftovers()


def test_the_node_uuid_comes_from_a_file(node: Node) -> None:
    """Issue 15 item 10: --node-uuid is in /proc/<pid>/cmdline for every user; the file is not."""
    node.write_config(volume_config("STATE", [node_id_key(0)]), volume_config("EPHEMERAL"))
    uuid_file = node.workdir / "node-uuid"
    uuid_file.write_text(f"{node.node_uuid}\n")
    argv = node.run_argv()
    at = argv.index("--node-uuid")
    argv[at : at + 2] = ["--node-uuid-file", str(uuid_file)]
    result = run_once(node, argv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert cryptsetup_opens(node.region("STATE"), f"{node.node_uuid}STATE".encode(), slot=0)


@contextlib.contextmanager
def running(node: Node, mounts: int) -> Iterator[subprocess.Popen[str]]:
    """`volumed run` (no --once), entered once ``mounts`` volumes are mounted; SIGKILLed (with its process
    group, not its FUSE servers) at the end if still running."""
    process = subprocess.Popen(
        node.run_argv(once=False),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert process.stdout is not None
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if sum("[info     ] mounted " in seen for seen in lines) == mounts:
                break
        else:
            raise AssertionError(f"the run ended before {mounts} mounts:\n{''.join(lines)}")
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()


def fuse_servers(node: Node) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
            if FUSE_SERVER_MODULE.encode() in argv and any(str(node.workdir).encode() in a for a in argv):
                found.append(int(entry.name))
    return found


def core_limit(pid: int) -> list[str]:
    with open(f"/proc/{pid}/limits", encoding="ascii") as limits:
        line = next(line for line in limits if line.startswith("Max core file size"))
    return line.split()[4:6]


def test_key_holders_cannot_dump_core(node: Node) -> None:
    """Issue 15 item 11: a forced core of a FUSE server held both halves of the XTS key."""
    node.write_config(
        volume_config("STATE", [static_key(0, "s")]), volume_config("EPHEMERAL", [static_key(0, "e")])
    )
    with running(node, mounts=2) as run:
        servers = fuse_servers(node)
        assert len(servers) == 1  # one FUSE server for both volumes (issue 16)
        assert core_limit(run.pid) == ["0", "0"]
        for pid in servers:
            assert core_limit(pid) == ["0", "0"], pid


def test_a_second_run_is_refused_while_the_first_has_volumes_open(node: Node) -> None:
    """Issue 15 item 5: a second instance with another --state-dir opened every volume again (a second
    writable FUSE view of each) and reported them ready."""
    node.write_config(
        volume_config("STATE", [static_key(0, "s")]), volume_config("EPHEMERAL", [static_key(0, "e")])
    )
    with running(node, mounts=2) as first:
        servers = sorted(fuse_servers(node))
        argv = node.run_argv()
        argv[argv.index("--state-dir") + 1] = str(node.workdir / "run2")
        result = run_once(node, argv)
        assert result.returncode == 5, result.stdout + result.stderr
        assert result.stderr.splitlines()[-1] == (
            f"Error: disk {node.system_disk} is in use by volumed run (pid {first.pid}); nothing was done"
        )
        assert sorted(fuse_servers(node)) == servers
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    assert not node.leftovers()


def test_a_view_left_by_a_killed_run_is_released_when_its_volume_no_longer_opens(node: Node) -> None:
    """Issue 15 item 13: after `kill -9`, a volume that then failed to open kept its FUSE view, loop device
    and mount (from the killed run) for good."""
    node.write_config(
        volume_config("STATE", [static_key(0, "s")]), volume_config("EPHEMERAL", [static_key(0, "e")])
    )
    with running(node, mounts=2) as run:
        os.killpg(run.pid, signal.SIGKILL)
    assert len(node.leftovers()) >= 6  # both views: server, FUSE mount, loop device, filesystem mount
    node.write_config(  # EPHEMERAL's only key is no longer one its header has: it cannot open
        volume_config("STATE", [static_key(0, "s")]), volume_config("EPHEMERAL", [static_key(0, "other")])
    )
    result = run_once(node, node.run_argv())
    assert result.returncode == 6, result.stdout + result.stderr  # --once: a volume failed
    table = [line.split() for line in result.stdout.splitlines()[1:] if line[:1].strip()]  # not wrapped parts
    rows = {row[0]: row[1].rstrip(":") for row in table}  # the table, then "ID phase: reason" lines
    assert rows == {"STATE": "ready", "EPHEMERAL": "failed"}, result.stdout
    assert node.leftovers() == []


def test_a_run_with_another_state_dir_is_refused_while_a_killed_runs_views_are_up(node: Node) -> None:
    """Review 3 (attack_kill9.sh): after `kill -9` the lock went with the run but its FUSE servers and mounts
    stayed up; a second run with another --state-dir opened both volumes again. The run with the killed
    run's own state directory still adopts them."""
    node.write_config(
        volume_config("STATE", [static_key(0, "s")]), volume_config("EPHEMERAL", [static_key(0, "e")])
    )
    with running(node, mounts=2) as run:
        os.killpg(run.pid, signal.SIGKILL)
    servers = sorted(fuse_servers(node))
    assert len(servers) == 1  # the one FUSE server of both volumes, in a session of its own
    argv = node.run_argv()
    argv[argv.index("--state-dir") + 1] = str(node.workdir / "run2")
    result = run_once(node, argv)
    assert result.returncode == 5, result.stdout + result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"Error: disk {node.system_disk} is in use by the FUSE server (pid "), last
    assert last.endswith("which another state directory's run left up; nothing was done"), last
    assert sorted(fuse_servers(node)) == servers
    assert not (node.workdir / "run2" / "fuse").exists()
    result = run_once(node, node.run_argv())  # the killed run's state directory: adopts and ends cleanly
    assert result.returncode == 0, result.stdout + result.stderr
    assert node.leftovers() == []


def test_a_busy_view_at_shutdown_is_named_as_the_runs_own_and_keeps_other_runs_out(node: Node) -> None:
    """Review 3 (attack_busy_shutdown.sh): SIGTERM while a process works in EPHEMERAL leaves its view up; it
    was logged as "a view left by an earlier run", and a run with another --state-dir then opened EPHEMERAL
    again under the mounted filesystem."""
    node.write_config(
        volume_config("STATE", [static_key(0, "s")]), volume_config("EPHEMERAL", [static_key(0, "e")])
    )
    with running(node, mounts=2) as run:
        busy = subprocess.Popen(["sleep", "600"], cwd=node.target("EPHEMERAL"))
        try:
            run.send_signal(signal.SIGTERM)
            assert run.stdout is not None
            rest = run.stdout.read()
            run.wait(timeout=60)
            assert "a view of this run stays up: its volume could not be closed" in rest, rest
            assert "left by an earlier run" not in rest, rest
            argv = node.run_argv()
            argv[argv.index("--state-dir") + 1] = str(node.workdir / "run2")
            result = run_once(node, argv)
            assert result.returncode == 5, result.stdout + result.stderr
            assert "which another state directory's run left up; nothing was done" in result.stderr
        finally:
            busy.kill()
            busy.wait()
    node.clean_up()

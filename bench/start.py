"""Start-up benchmark: what `volumed run` costs before and besides its KDFs (issue 16).

Run: ``.venv/bin/python bench/start.py [--quick] [--runs N] [--imports-only]`` (``make bench`` runs it; the
``volumed run`` part needs root, FUSE, mkfs.xfs and mkfs.ext4).

* ``import_s``: ``python -c 'import volumed.controllers'`` in a fresh interpreter, wall-clock, median of
  ``--runs``; ``python_floor_s``: the same for ``python -c 'import pydantic'`` (interpreter start and
  pydantic, the floor of any process that reads a config). The two are run in turns, so that load on the
  machine falls on both alike. ``import_ratio`` = ``import_s / python_floor_s`` (goal <= 3);
  ``import_cpu_ratio``: the same ratio of the processes' CPU time (user + system), steadier on a busy machine.
  ``modules_loaded``: which of the optional or heavy libraries ``import volumed.controllers`` loads.
* ``start_to_first_reconcile_s``: a real ``volumed run`` (fuse backend, image files, second boot of STATE and
  EPHEMERAL with fast KDFs), from the process' spawn to its "volume subsystem started" line: imports, config,
  building the subsystem and starting its controllers, which reconcile from then on.
  ``start_to_all_mounted_s``: to its last "mounted" line.
* ``idle_rss_mb``: that process' VmRSS (/proc) once every volume is mounted and it idles (goal <= 60 MB).
* ``rss_per_extra_volume_mb``: the same boot with ``--extra`` more encrypted user volumes; the growth of the
  whole (``volumed run`` and its FUSE servers) per extra volume (goal <= 5 MB).

Last line, JSON: the keys above (the ``volumed run`` ones left out with ``--imports-only``), the parameters.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

PYTHON = sys.executable
VOLUMED = str(Path(sys.executable).parent / "volumed")
FUSE_SERVER_MODULE = "volumed.storage.activation._fuse_server"
MIB = 1 << 20
SYSTEM_DISK = 1024 * MIB
USER_SIZE = 64 * MIB
FAST_PBKDF = "pbkdf: {type: argon2id, memory: 32, iterations: 4, parallel: 1}"
WATCHED = ("rich", "pygments", "celpy", "lark", "pendulum", "grpc", "google.protobuf", "tpm2_pytss", "yaml")
RUN_LIMIT = 180.0


def child_seconds(argv: list[str], *, write_bytecode: bool = False) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of ``argv``."""
    env = dict(os.environ)
    if write_bytecode:  # an installed image carries its bytecode, even where PYTHONDONTWRITEBYTECODE=1 is set
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def import_times(runs: int) -> dict[str, float]:
    """Medians of ``import volumed.controllers`` and ``import pydantic``, fresh interpreters, in turns."""
    samples: dict[str, list[tuple[float, float]]] = {"volumed": [], "pydantic": []}
    commands = {"volumed": "import volumed.controllers", "pydantic": "import pydantic"}
    for code in commands.values():  # one unmeasured run each: bytecode caches written, files cached
        child_seconds([PYTHON, "-c", code], write_bytecode=True)
    for _ in range(runs):
        for name, code in commands.items():
            samples[name].append(child_seconds([PYTHON, "-c", code]))
    wall = {name: statistics.median(s[0] for s in values) for name, values in samples.items()}
    cpu = {name: statistics.median(s[1] for s in values) for name, values in samples.items()}
    return {
        "import_s": round(wall["volumed"], 3),
        "python_floor_s": round(wall["pydantic"], 3),
        "import_ratio": round(wall["volumed"] / wall["pydantic"], 2),
        "import_cpu_s": round(cpu["volumed"], 3),
        "python_floor_cpu_s": round(cpu["pydantic"], 3),
        "import_cpu_ratio": round(cpu["volumed"] / cpu["pydantic"], 2),
    }


def modules_loaded() -> list[str]:
    """Which of WATCHED ``import volumed.controllers`` loads in a fresh interpreter."""
    code = f"import sys, volumed.controllers; print(' '.join(m for m in {WATCHED!r} if m in sys.modules))"
    result = subprocess.run([PYTHON, "-c", code], check=True, capture_output=True, text=True)
    return result.stdout.split()


# -- a real `volumed run` ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """Two disk images and a config with STATE, EPHEMERAL and ``extra`` user volumes, all encrypted."""

    workdir: Path
    extra: int
    node_uuid: str

    @property
    def volumes(self) -> int:
        return 2 + self.extra

    def argv(self, *, once: bool) -> list[str]:
        return [
            VOLUMED, "run", "--config", str(self.workdir / "config.yaml"),
            "--disk", str(self.workdir / "system.img"), "--disk", str(self.workdir / "data.img"),
            *(["--once"] if once else []), "--backend", "fuse", "--root", str(self.workdir / "root"),
            "--state-dir", str(self.workdir / "run"), "--node-uuid", self.node_uuid,
            "--retry-interval", "0.5", "--timeout", "120",
        ]  # fmt: skip


def make_node(workdir: Path, extra: int) -> Node:
    from volumed.storage import disklayout
    from volumed.storage.gpt import new_table, write_partition_table

    workdir.mkdir(parents=True)
    disklayout.create_disk_image(workdir / "system.img", SYSTEM_DISK)
    data_size = (extra + 1) * (USER_SIZE + 8 * MIB)
    with (workdir / "data.img").open("wb") as image:
        image.truncate(data_size)
    write_partition_table(workdir / "data.img", new_table(data_size))
    (workdir / "run").mkdir(mode=0o700)
    documents = [
        f"apiVersion: v1alpha1\nkind: VolumeConfig\nname: {name}\nencryption:\n  provider: luks2\n"
        f"  keys:\n    - slot: 0\n      static: {{passphrase: {name.lower()}-key}}\n  {FAST_PBKDF}\n"
        for name in ("STATE", "EPHEMERAL")
    ]
    documents += [
        f"apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: v{i}\n"
        f"provisioning:\n  diskSelector: {{match: '!system_disk'}}\n"
        f"  minSize: {USER_SIZE // MIB}MiB\n  maxSize: {USER_SIZE // MIB}MiB\n"
        f"filesystem: {{type: ext4}}\nencryption:\n  provider: luks2\n"
        f"  keys:\n    - slot: 0\n      static: {{passphrase: user-key-{i}}}\n  {FAST_PBKDF}\n"
        for i in range(1, extra + 1)
    ]
    (workdir / "config.yaml").write_text("---\n".join(documents))
    return Node(workdir, extra, str(uuid.uuid4()))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def fuse_servers(workdir: Path) -> list[int]:
    """The FUSE servers of volumes under ``workdir`` (they run in sessions of their own)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
                if FUSE_SERVER_MODULE.encode() in argv and any(str(workdir).encode() in a for a in argv):
                    found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class Boot:
    first_reconcile_s: float
    all_mounted_s: float
    main_rss_mb: float
    fuse_rss_mb: list[float]


def first_boot(node: Node) -> None:
    """Provision and format every volume (`--once`), so that the measured boot is a second boot."""
    result = subprocess.run(
        node.argv(once=True), capture_output=True, text=True, timeout=RUN_LIMIT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"first boot failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def measured_boot(node: Node, idle_s: float) -> Boot:
    """`volumed run` until every volume is mounted, then ``idle_s`` of idling; stopped with SIGTERM."""
    start = time.perf_counter()
    process = subprocess.Popen(
        node.argv(once=False),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert process.stdout is not None
    started = mounted_at = None
    mounts = 0
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            if started is None and "volume subsystem started" in line:
                started = time.perf_counter() - start
            if "[info     ] mounted " in line:
                mounts += 1
                if mounts == node.volumes:
                    mounted_at = time.perf_counter() - start
                    break
        if started is None or mounted_at is None:
            raise RuntimeError(f"the run ended before {node.volumes} mounts:\n{''.join(lines)}")
        time.sleep(idle_s)
        servers = fuse_servers(node.workdir)
        boot = Boot(started, mounted_at, rss_mb(process.pid), [rss_mb(pid) for pid in servers])
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        return boot
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        process.stdout.close()


def clean_up(node: Node) -> None:
    """Stop what a failed run left (its FUSE servers, mounts under the node's root) and remove the node."""
    for pid in fuse_servers(node.workdir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    for target in sorted((line.split()[1] for line in mounts), reverse=True):
        if target.startswith(str(node.workdir)):
            subprocess.run(["umount", "-l", target], check=False)
    shutil.rmtree(node.workdir, ignore_errors=True)


def run_numbers(extra: int, idle_s: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="volumed-bench-start-") as tmp:
        boots = {}
        for count in (0, extra):
            node = make_node(Path(tmp) / f"node-{count}", count)
            try:
                first_boot(node)
                boots[count] = measured_boot(node, idle_s)
            finally:
                clean_up(node)
    base, more = boots[0], boots[extra]
    total = {count: boot.main_rss_mb + sum(boot.fuse_rss_mb) for count, boot in boots.items()}
    return {
        "start_to_first_reconcile_s": round(base.first_reconcile_s, 3),
        "start_to_all_mounted_s": round(base.all_mounted_s, 3),
        "idle_rss_mb": round(base.main_rss_mb, 1),
        "fuse_server_rss_mb": round(statistics.median(base.fuse_rss_mb), 1) if base.fuse_rss_mb else 0.0,
        "rss_per_extra_volume_mb": round((total[extra] - total[0]) / extra, 1),
        "idle_rss_mb_with_extra": round(more.main_rss_mb, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and volumes")
    parser.add_argument("--runs", type=int, default=None, help="fresh interpreters per import (default 11)")
    parser.add_argument("--extra", type=int, default=None, help="extra user volumes (default 4)")
    parser.add_argument("--imports-only", action="store_true", help="leave out the `volumed run` part")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 11)
    extra = args.extra or (2 if args.quick else 4)
    numbers: dict[str, object] = {**import_times(runs), "modules_loaded": modules_loaded()}
    print(
        f"import volumed.controllers {numbers['import_s']} s, import pydantic {numbers['python_floor_s']} s:"
        f" ratio {numbers['import_ratio']} (CPU {numbers['import_cpu_ratio']}; goal <= 3)",
        file=sys.stderr,
    )
    if not args.imports_only:
        numbers.update(run_numbers(extra, idle_s=1.0))
        print(
            f"volumed run: first reconcile after {numbers['start_to_first_reconcile_s']} s, idle RSS"
            f" {numbers['idle_rss_mb']} MB (goal <= 60), {numbers['rss_per_extra_volume_mb']} MB per extra"
            " volume (goal <= 5)",
            file=sys.stderr,
        )
    numbers.update({"runs": runs, "extra_volumes": extra, "cpus": os.cpu_count()})
    print(json.dumps(numbers))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reaction benchmark: how soon volumed notices a change, with event sources and with polling (issue 14).

Run as root: ``.venv/bin/python bench/react.py [--quick] [--idle SECONDS] [--no-run]`` (loop devices; the
``volumed run`` part needs FUSE, mkfs.xfs and mkfs.ext4, like bench/start.py).

* ``config_events_ms``: median over ``--writes`` configs renamed into place (as ``volumed apply-config``
  does), from the rename to the start of the first ConfigLoader reconcile after it; the loader polls once an
  hour, so inotify woke it. ``config_events_applied_ms``: to the ConfigStatus that shows the new digest.
* ``config_polling_ms``: the same with the inotify source removed and the subsystem's poll interval (1 s),
  each write at a random moment of the poll period.
* ``disk_events_ms``: median over ``--attaches`` loop devices attached (``losetup``, whose attach the kernel
  announces with a block uevent), from spawning losetup to the start of the Discovery rescan it caused (node
  disks, poll interval 1 h). This host can hot-add no device that discovery publishes (no device-mapper, no
  modules; loop devices are skipped as volumed's own): this is the reaction, not a new Disk resource.
* ``disk_polling_ms``: a ``--disk`` image file created while Discovery runs on images (no uevents exist
  for files; the default interval of 5 s), at a random moment of the poll period, to its Disk resource.
* ``idle_cpu_percent``: a real ``volumed run`` (bench/start.py's node: fuse backend, STATE and EPHEMERAL
  on image files), CPU time (user + system) of its process over ``--idle`` seconds once every volume is
  mounted, in percent of one CPU.

Last line, JSON: the keys above and the parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import structlog

from volumed.controllers import ConfigLoader, DiscoveryController
from volumed.controllers.block._discovery import image_disk_id
from volumed.resources import BLOCK, CONFIG, CONFIG_STATUS_ID, ConfigStatusDefinition, DiskDefinition
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

if TYPE_CHECKING:
    from volumed.runtime.controller import ControllerContext

sys.path.insert(0, str(Path(__file__).parent))
import start  # bench/start.py: the node of a real volumed run

STATUS = Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID)
CONFIG_TEXT = "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\n"
HOUR = 3600.0


class _Stopwatch:
    """The start of the first reconcile after `arm`."""

    def __init__(self) -> None:
        self.armed = False
        self.at: float | None = None
        self.seen = anyio.Event()

    def arm(self) -> None:
        self.armed, self.at, self.seen = True, None, anyio.Event()

    def mark(self) -> None:
        if self.armed and self.at is None:
            self.at = time.perf_counter()
            self.seen.set()


class TimedLoader(ConfigLoader):
    def __init__(self, path: Path, *, poll_interval: float, events: bool) -> None:
        super().__init__(path, poll_interval=poll_interval)
        if not events:
            self.sources = ()
        self.watch = _Stopwatch()

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.watch.mark()
        await super().reconcile(ctx)


class TimedDiscovery(DiscoveryController):
    def __init__(self, images: list[str], *, interval: float) -> None:
        super().__init__(images, interval=interval)
        self.watch = _Stopwatch()

    async def reconcile(self, ctx: ControllerContext) -> None:
        self.watch.mark()
        await super().reconcile(ctx)


async def config_reaction(workdir: Path, writes: int, *, events: bool) -> tuple[float, float]:
    """Median ms from a rename of a new config to the next reconcile, and to its applied status."""
    path = workdir / "config.yaml"
    path.write_text(CONFIG_TEXT)
    loader = TimedLoader(path, poll_interval=HOUR if events else 1.0, events=events)
    woke: list[float] = []
    applied: list[float] = []
    async with run_runtime(loader) as runtime:
        await assert_resource(runtime.state, STATUS, lambda r: r.spec.valid)
        for index in range(writes):
            await anyio.wait_all_tasks_blocked()
            if not events:
                await anyio.sleep(random.uniform(0, 1.0))  # a write comes at any moment of a poll period
            new = workdir / ".config.yaml.new"
            new.write_text(f"{CONFIG_TEXT}# write {index}\n")
            loader.watch.arm()
            start_at = time.perf_counter()
            os.replace(new, path)
            with anyio.fail_after(10):
                await loader.watch.seen.wait()
            assert loader.watch.at is not None
            woke.append(loader.watch.at - start_at)
            digest = (await runtime.state.get(STATUS)).spec.digest
            await assert_resource(runtime.state, STATUS, lambda r, d=digest: r.spec.digest != d, within=10)
            applied.append(time.perf_counter() - start_at)
    path.unlink()
    return statistics.median(woke) * 1e3, statistics.median(applied) * 1e3


async def disk_events(workdir: Path, attaches: int) -> float:
    """Median ms from spawning losetup (a loop attach) to the Discovery rescan of node disks it causes."""
    image = workdir / "loop.img"
    with image.open("wb") as file:
        file.truncate(1 << 20)
    discovery = TimedDiscovery([], interval=HOUR)
    reactions: list[float] = []
    async with run_runtime(discovery):
        for _ in range(attaches):
            await anyio.wait_all_tasks_blocked()
            await anyio.sleep(0.2)  # the previous detach's uevents are in, and its rescan is over
            await anyio.wait_all_tasks_blocked()
            discovery.watch.arm()
            start_at = time.perf_counter()
            done = await anyio.run_process(["losetup", "--find", "--show", str(image)])
            device = done.stdout.decode().strip()
            try:
                with anyio.fail_after(10):
                    await discovery.watch.seen.wait()
                assert discovery.watch.at is not None
                reactions.append(discovery.watch.at - start_at)
            finally:
                await anyio.run_process(["losetup", "--detach", device])
    return statistics.median(reactions) * 1e3


async def disk_polling(workdir: Path, samples: int) -> float:
    """Median ms from creating a --disk image file to its Disk resource (discovery polls images every 5 s)."""
    image = workdir / "late.img"
    disk = Pointer(BLOCK, DiskDefinition.type, image_disk_id(str(image)))
    discovery = DiscoveryController([str(image)])
    delays: list[float] = []
    async with run_runtime(discovery) as runtime:
        for _ in range(samples):
            await anyio.sleep(random.uniform(0, 5.0))  # a disk comes at any moment of a poll period
            start_at = time.perf_counter()
            with image.open("wb") as file:
                file.truncate(1 << 20)
            await assert_resource(runtime.state, disk, within=30)
            delays.append(time.perf_counter() - start_at)
            image.unlink()
            await assert_no_resource(runtime.state, disk, within=30)
    return statistics.median(delays) * 1e3


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def idle_cpu_percent(workdir: Path, idle_s: float) -> float:
    """CPU of a real `volumed run` over ``idle_s`` once every volume is mounted, in % of one CPU."""
    node = start.make_node(workdir / "node", 0)
    try:
        start.first_boot(node)
        process = subprocess.Popen(
            node.argv(once=False),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None
        try:
            mounts = 0
            for line in process.stdout:
                if "[info     ] mounted " in line:
                    mounts += 1
                    if mounts == node.volumes:
                        break
            if mounts < node.volumes:
                raise RuntimeError("volumed run ended before every volume was mounted")
            # Drain its output meanwhile, so that it never blocks on a full pipe.
            drain = subprocess.Popen(["cat"], stdin=process.stdout, stdout=subprocess.DEVNULL)
            before, at = _cpu_seconds(process.pid), time.perf_counter()
            time.sleep(idle_s)
            cpu = _cpu_seconds(process.pid) - before
            elapsed = time.perf_counter() - at
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            drain.wait(timeout=10)
            return 100 * cpu / elapsed
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            process.stdout.close()
    finally:
        start.clean_up(node)


async def reactions(workdir: Path, writes: int, attaches: int, polls: int) -> dict[str, float]:
    events_woke, events_applied = await config_reaction(workdir, writes, events=True)
    polling_woke, _ = await config_reaction(workdir, max(3, writes // 4), events=False)
    return {
        "config_events_ms": round(events_woke, 2),
        "config_events_applied_ms": round(events_applied, 2),
        "config_polling_ms": round(polling_woke, 1),
        "disk_events_ms": round(await disk_events(workdir, attaches), 2),
        "disk_polling_ms": round(await disk_polling(workdir, polls), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, 5 s of idling")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idling measured (default 30)")
    parser.add_argument("--no-run", action="store_true", help="leave out the real volumed run (idle CPU)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up
    writes, attaches, polls = (8, 4, 3) if args.quick else (30, 10, 6)
    idle = 5.0 if args.quick else args.idle
    with tempfile.TemporaryDirectory(prefix="volumed-bench-react-") as tmp:
        numbers = anyio.run(reactions, Path(tmp), writes, attaches, polls)
        for key, value in numbers.items():
            print(f"{key}: {value}")
        if not args.no_run:
            numbers["idle_cpu_percent"] = round(idle_cpu_percent(Path(tmp), idle), 2)
            print(f"idle_cpu_percent: {numbers['idle_cpu_percent']} (over {idle} s)")
    print(json.dumps({**numbers, "writes": writes, "attaches": attaches, "polls": polls, "idle_s": idle}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

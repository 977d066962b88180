"""A disk hot-added to the running guest is found by `volumed run` through its block uevent, not its poll.

`volumed run` (the CLI, its own process) runs on the node's disks with ``--disk-poll-interval`` at an hour.
Once its first scan is published and its volumes have settled, the scenario writes ``hotplug-ready`` to the
work share and watches the Disks through the API; the host hot-plugs a virtio-blk disk through QEMU's
monitor (QMP) then. The scenario records when the kernel showed the new disk in /sys/block and when volumed
published its Disk, ``volumed get disks`` as the CLI prints it, and the new Disk's spec.

Params: ``poll_interval`` (seconds, given to ``--disk-poll-interval``), ``wait_limit`` (seconds to wait for
the hot-plugged disk).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Final

from volumed.cli.api import ApiClient, ApiError

from ._support import WORK, Scenario, run_scenario

STATE_DIR: Final = Path("/run/volumed")
SOCKET: Final = STATE_DIR / "api.sock"
ROOT: Final = Path("/run/node")
LOG: Final = WORK / "volumed.log"
VOLUMED: Final = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "volumed"
START_LIMIT: Final = 150.0
SETTLED: Final = frozenset({"ready", "failed", "missing"})


def disks_by_id() -> dict[str, dict[str, Any]]:
    """The Disks volumed publishes now (id -> spec); empty while its API does not answer yet."""
    try:
        items = ApiClient(str(SOCKET)).get("disks").items
    except ApiError:
        return {}
    return {item["metadata"]["id"]: item["spec"] for item in items}


def phases() -> dict[str, str]:
    try:
        items = ApiClient(str(SOCKET)).get("volumestatuses").items
    except ApiError:
        return {}
    return {item["metadata"]["id"]: item["spec"]["phase"] for item in items}


def wait_until_started(s: Scenario, volumed: subprocess.Popen[bytes]) -> dict[str, dict[str, Any]]:
    """The Disks of the first scan, once the volumes settled (their mkfs would slow this emulated guest)."""
    deadline = time.monotonic() + START_LIMIT
    disks: dict[str, dict[str, Any]] = {}
    now: dict[str, str] = {}
    while time.monotonic() < deadline:
        s.check(volumed.poll() is None, f"volumed run exited {volumed.returncode} (log: {LOG})")
        disks = disks_by_id()
        now = phases()
        if disks and now and set(now.values()) <= SETTLED:
            return disks
        time.sleep(0.5)
    s.check(bool(disks), f"volumed published no Disk within {START_LIMIT:.0f} s")
    s.note(f"volumes not settled after {START_LIMIT:.0f} s: {now}; going on")
    return disks


class DiskWatch:
    """``volumed watch disks`` in a thread: when the first Disk that is not in ``known`` was published."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.found: tuple[float, str] | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            with ApiClient(str(SOCKET)).watch("disks") as events:
                for event in events:
                    if event.type != "created" or event.resource is None:
                        continue
                    disk_id = event.resource["metadata"]["id"]
                    if disk_id not in self.known:
                        self.found = (time.monotonic(), disk_id)
                        return
        except Exception as exc:  # the scenario reports it
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()


def main(s: Scenario) -> None:
    poll_interval = float(s.params["poll_interval"])
    wait_limit = float(s.params["wait_limit"])
    STATE_DIR.mkdir(mode=0o700, exist_ok=True)
    s.step(f"volumed run on the node's disks, polling them every {poll_interval:.0f} s")
    with LOG.open("wb") as log:
        volumed = subprocess.Popen(
            [str(VOLUMED), "run", "--state-dir", str(STATE_DIR), "--root", str(ROOT),
             "--disk-poll-interval", str(poll_interval)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        disks = wait_until_started(s, volumed)
        s.note(f"Disks: {sorted(disks)}; volumes: {phases()}")
        s.run(str(VOLUMED), "get", "disks", "--socket", str(SOCKET))
        block_before = set(os.listdir("/sys/block"))
        watch = DiskWatch(set(disks))
        watch.start()
        time.sleep(1.0)  # the watch has sent its current items: what comes now is new

        s.step("ask the host to hot-plug a disk, and wait for it")
        ready_at = time.monotonic()
        (WORK / "hotplug-ready").write_text("ready\n")
        kernel: tuple[float, str] | None = None
        while not watch.done.wait(0.02) and time.monotonic() - ready_at < wait_limit:
            if kernel is None and (new := sorted(set(os.listdir("/sys/block")) - block_before)):
                kernel = (time.monotonic(), new[0])
                s.note(f"the kernel shows /sys/block/{new[0]} {kernel[0] - ready_at:.2f} s after ready")
        if kernel is None and (new := sorted(set(os.listdir("/sys/block")) - block_before)):
            kernel = (time.monotonic(), new[0])  # the Disk came first: an upper bound
        s.check(watch.error is None, f"the watch of Disks failed: {watch.error}")
        s.check(kernel is not None, f"the kernel showed no new disk within {wait_limit:.0f} s")
        s.check(watch.found is not None, f"volumed published no new Disk within {wait_limit:.0f} s")
        assert kernel is not None
        assert watch.found is not None
        found_at, disk_id = watch.found
        seconds = round(found_at - kernel[0], 3)
        s.note(f"volumed published Disk {disk_id} {seconds:.2f} s after the kernel showed {kernel[1]}")
        s.record("kernel_disk", kernel[1])
        s.record("disk_id", disk_id)
        s.record("kernel_to_disk_seconds", seconds)
        s.record("ready_to_kernel_seconds", round(kernel[0] - ready_at, 3))

        s.step("volumed get disks shows it with its size")
        s.record("disk", disks_by_id().get(disk_id))
        s.record("get_disks", s.run(str(VOLUMED), "get", "disks", "--socket", str(SOCKET)).stdout)
    finally:
        s.step("stop volumed")
        if volumed.poll() is None:
            volumed.send_signal(signal.SIGTERM)
        try:
            volumed.wait(timeout=60)
        except subprocess.TimeoutExpired:
            volumed.kill()
            volumed.wait()
        s.record("volumed_exit", volumed.returncode)
        for line in LOG.read_text(errors="replace").splitlines()[-40:]:
            print(f"      {line}", flush=True)


if __name__ == "__main__":
    run_scenario(main)

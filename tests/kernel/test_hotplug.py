"""A disk hot-plugged into the running guest (scenario ``tests/kernel/guest/hotplug_uevent.py``) is published
by `volumed run` within seconds while its disk poll is an hour: found through the kernel's block uevent.

The disk is hot-plugged the way a hypervisor does it: QEMU's monitor (QMP) adds a raw block node over an image
file (``blockdev-add``) and a virtio-blk PCI device on it (``device_add``), which the guest's kernel sees
through ACPI PCI hot-plug. The image holds a GPT with one partition, so the kernel sends a burst (the disk,
its partition)."""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING, Any, Final

from tests.kernel._guest import MIB, KernelMachine
from volumed.storage.gpt import new_table, write_partition_table

if TYPE_CHECKING:
    from pathlib import Path

    from tests.kernel.assets import KernelAssets

POLL_INTERVAL: Final = 3600.0  # the disk poll: a disk seen within seconds was found by its uevent
WAIT_LIMIT: Final = 60.0  # how long the guest waits for the hot-plugged disk (emulation is slow)
FOUND_WITHIN: Final = 10.0  # kernel's disk to volumed's Disk, asserted: far under the poll
READY_LIMIT: Final = 270.0  # boot, then volumed started and settled, until the guest asks for the disk
TIME_LIMIT: Final = 360.0
DISK_SIZE: Final = 64 * MIB
SERIAL: Final = "volumed-hotplug"


class Qmp:
    """A QMP client over QEMU's unix socket: the greeting, ``qmp_capabilities``, then one command at a time
    (asynchronous events between the answers are skipped)."""

    def __init__(self, path: Path) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(30)
        self._sock.connect(str(path))
        self._reader = self._sock.makefile("rb")
        greeting = json.loads(self._reader.readline())
        if "QMP" not in greeting:
            raise RuntimeError(f"not a QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        request: dict[str, Any] = {"execute": command}
        if arguments is not None:
            request["arguments"] = arguments
        self._sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            line = self._reader.readline()
            if not line:
                raise RuntimeError(f"QMP closed the connection during {command}")
            answer = json.loads(line)
            if "error" in answer:
                raise RuntimeError(f"QMP {command}: {answer['error']}")
            if "return" in answer:
                return answer["return"]

    def close(self) -> None:
        self._reader.close()
        self._sock.close()


def hot_plug(machine: KernelMachine, image: Path, outcome: dict[str, Any]) -> Any:
    """The host's side: wait for the guest to ask (``hotplug-ready``), then add the disk through QMP."""

    def during(share: Path) -> None:
        deadline = time.monotonic() + READY_LIMIT
        while not (share / "hotplug-ready").exists():
            if (share / "exit-code").exists() or time.monotonic() > deadline:
                outcome["error"] = "the guest never asked for the disk"
                return
            time.sleep(0.1)
        assert machine.qmp_socket is not None
        try:
            qmp = Qmp(machine.qmp_socket)
            try:
                qmp.execute(
                    "blockdev-add",
                    {
                        "node-name": "hotplug0",
                        "driver": "raw",
                        "file": {"driver": "file", "filename": str(image)},
                    },
                )
                qmp.execute(
                    "device_add",
                    {"driver": "virtio-blk-pci", "id": "hotplug-disk", "drive": "hotplug0", "serial": SERIAL},
                )
                outcome["plugged"] = True
            finally:
                qmp.close()
        except (OSError, RuntimeError, ValueError) as exc:
            outcome["error"] = f"hot-plug through QMP failed: {exc}"

    return during


def test_a_hot_plugged_disk_is_published_through_its_uevent_not_the_poll(
    kernel_assets: KernelAssets, tmp_path: Path
) -> None:
    machine = KernelMachine(kernel_assets, tmp_path / "hotplug", qmp=True)
    image = tmp_path / "hotplug.img"
    with image.open("wb") as file:
        file.truncate(DISK_SIZE)
    table, _ = new_table(DISK_SIZE).add_partition(size=32 * MIB, name="hotplug")
    write_partition_table(image, table)
    outcome: dict[str, Any] = {}

    boot = machine.boot(
        "hotplug_uevent",
        {"poll_interval": POLL_INTERVAL, "wait_limit": WAIT_LIMIT},
        time_limit=TIME_LIMIT,
        during=hot_plug(machine, image, outcome),
    )
    assert "error" not in outcome, outcome["error"] + "\n" + boot.describe()
    results = boot.check().results
    assert outcome == {"plugged": True}

    disk_id = results["disk_id"]
    assert results["kernel_disk"] == disk_id  # the disk the kernel added, not something else rescanned
    assert results["kernel_to_disk_seconds"] < FOUND_WITHIN < POLL_INTERVAL
    disk = results["disk"]
    assert disk["dev_path"] == f"/dev/{disk_id}"
    assert disk["size"] == DISK_SIZE
    # Talos v1.12 reads device/serial only: a virtio-blk disk's serial (sysfs vdb/serial) is not read
    assert disk["serial"] == ""
    assert disk["transport"] == "virtio"
    row = next(line.split() for line in results["get_disks"].splitlines() if f"/dev/{disk_id}" in line)
    assert str(DISK_SIZE) in row  # `volumed get disks` shows it with its size

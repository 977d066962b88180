"""A disk's serial number the way Talos v1.12 fills ``disk.serial``.

go-blockdevice v2 (``GetProperties``) reads ``device/serial`` of the disk's sysfs directory (whitespace
trimmed). When that is empty, Talos' DisksController (``serialFromUdevdHelpers``) runs udev's helper for the
transport, ``ata_id --export /dev/<disk>`` for ``ata`` and ``scsi_id --export --allowlisted --device
/dev/<disk>`` for ``scsi``, and takes ``ID_SERIAL``, else ``ID_SERIAL_SHORT`` from its output; any other
transport (``sata``, ``virtio``, ...) keeps the empty serial. A virtio-blk disk's own ``serial`` attribute
(``/sys/block/vda/serial``, not under ``device``) is not read.
"""

from __future__ import annotations

import os
import subprocess
from typing import Final

UDEV_DIR: Final = "/usr/lib/udev"
HELPER_TIMEOUT: Final = 10.0


def helper_argv(transport: str, dev_path: str, *, udev_dir: str = UDEV_DIR) -> list[str] | None:
    """The udev helper Talos runs for a disk without ``device/serial``; None for the other transports."""
    match transport.lower():
        case "ata":
            return [os.path.join(udev_dir, "ata_id"), "--export", dev_path]
        case "scsi":
            return [os.path.join(udev_dir, "scsi_id"), "--export", "--allowlisted", "--device", dev_path]
        case _:
            return None


def serial_from_export(output: str) -> str:
    """``ID_SERIAL``, else ``ID_SERIAL_SHORT``, of a helper's ``KEY=value`` lines (blank lines, ``#`` comments
    and lines without ``=`` skipped; keys and values trimmed; a later key wins), "" when neither is set."""
    env: dict[str, str] = {}
    for line in output.split("\n"):
        line = line.removesuffix("\r")  # Go's bufio.ScanLines drops a CR before the LF
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            env[key.strip()] = value.strip()
    return env.get("ID_SERIAL") or env.get("ID_SERIAL_SHORT") or ""


def read_serial(sys_path: str, transport: str, dev_path: str, *, udev_dir: str = UDEV_DIR) -> str:
    """The serial of the disk whose sysfs directory is ``sys_path`` (blocking: may run a udev helper)."""
    try:
        with open(os.path.join(sys_path, "device", "serial"), "rb") as file:
            serial = file.read(4096).strip().decode(errors="replace")
    except OSError:
        serial = ""
    if serial:
        return serial
    argv = helper_argv(transport, dev_path, udev_dir=udev_dir)
    if argv is None:
        return ""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=HELPER_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""  # Talos: a helper that fails leaves the serial empty
    return serial_from_export(done.stdout) if done.returncode == 0 else ""

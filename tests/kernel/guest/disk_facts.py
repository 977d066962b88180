"""The Disk facts on a real kernel's devices, in the guest: virtio-blk (vda), NVMe, virtio-scsi, SATA (AHCI)
disks and a CD drive, and a dm mapping over the SATA disk's partition. Records what volumed's discovery puts
on each Disk, the raw sysfs facts the host test works Talos' values out of, and which disks some CEL
selectors pick.

Params: ``selectors`` (list of CEL expressions).
"""

from __future__ import annotations

import os
from pathlib import Path

from volumed.config import compile_selector
from volumed.controllers.block._discovery import Discovery, scan_block_devices
from volumed.controllers.block._provisioning import _description

from ._support import Scenario, run_scenario

MAPPING = "volumed-facts"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _raw(name: str) -> dict[str, object]:
    """What the kernel shows of ``name``, read the plain way: the /sys/dev/block link, the files Talos reads,
    the SCSI host's driver."""
    block = Path("/sys/block") / name
    dev = _read(block / "dev")
    device_link = os.readlink(block / "device") if (block / "device").is_symlink() else ""
    hctl = os.path.basename(device_link)
    host = hctl.split(":")[0] if ":" in hctl else ""
    return {
        "dev_link": os.readlink(f"/sys/dev/block/{dev}") if dev else "",
        "modalias": _read(block / "device" / "modalias"),
        "wwid": _read(block / "wwid"),
        "device_wwid": _read(block / "device" / "wwid"),
        "uuid": _read(block / "uuid"),
        "subsystem": os.path.realpath(block / "subsystem"),
        "optimal_io_size": int(_read(block / "queue" / "optimal_io_size") or 0),
        "minimum_io_size": int(_read(block / "queue" / "minimum_io_size") or 0),
        "slaves": sorted(os.listdir(block / "slaves")) if (block / "slaves").is_dir() else [],
        "proc_name": _read(Path(f"/sys/class/scsi_host/host{host}/proc_name")) if host else "",
        "host_classes": sorted(
            kind
            for kind in ("sas", "fc", "iscsi", "scsi")
            if Path(f"/sys/class/{kind}_host/host{host}").is_dir()
        )
        if host
        else [],
        "serial": _read(block / "serial") or _read(block / "device" / "serial"),
    }


def main(s: Scenario) -> None:
    s.step("the disks the kernel has")
    names = sorted(os.listdir("/sys/block"))
    s.note(" ".join(names))
    sata = next(
        (n for n in names if n.startswith("sd") and _read(Path(f"/sys/block/{n}/device/vendor")) == "ATA"),
        None,
    )
    s.check(sata is not None, f"no ATA disk among {names}")
    s.step(f"a dm linear mapping over /dev/{sata}1")
    sectors = _read(Path(f"/sys/block/{sata}/{sata}1/size"))
    s.run("dmsetup", "create", MAPPING, "--table", f"0 {sectors} linear /dev/{sata}1 0")
    try:
        s.step("discovery")
        result = Discovery()
        scan_block_devices(result)
        disks = {name: spec.model_dump(mode="json") for name, spec in result.disks.items()}
        s.record("disks", disks)
        s.record("raw", {name: _raw(name) for name in result.disks})
        s.step("selectors")
        s.record(
            "selected",
            {
                expression: sorted(
                    name
                    for name, spec in result.disks.items()
                    if compile_selector(expression).matches(_description(spec))
                )
                for expression in s.params["selectors"]
            },
        )
    finally:
        s.run("dmsetup", "remove", MAPPING, check=False)


if __name__ == "__main__":
    run_scenario(main)

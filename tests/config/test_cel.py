"""Disk selectors: Talos' CEL environment (disk, system_disk, size constants, glob) on cel-python."""

from __future__ import annotations

import pytest

from volumed.config import SIZE_CONSTANTS, DiskDescription, SelectorError, compile_selector

NVME = DiskDescription(
    dev_path="/dev/nvme0n1",
    size=512 * 1000**3,
    transport="nvme",
    model="Samsung SSD 980",
    serial="S64",
    symlinks=("/dev/disk/by-id/nvme-Samsung_SSD_980", "/dev/disk/by-path/pci-0000:01:00.0-nvme-1"),
)
HDD = DiskDescription(dev_path="/dev/sda", size=4 * 1000**4, transport="sata", rotational=True, model="WDC")
USB = DiskDescription(dev_path="/dev/sdb", size=32 * 1000**3, transport="usb", readonly=True)


@pytest.mark.parametrize(
    ("expression", "matching"),
    [
        ('disk.transport == "nvme"', ["nvme"]),
        ("disk.size > 120u * GB && disk.size < 1u * TB", ["nvme"]),
        ('disk.transport == "sata" && !disk.rotational && !system_disk', []),
        ("disk.rotational", ["hdd"]),
        ("disk.readonly", ["usb"]),
        ("disk.size >= 4u * TB", ["hdd"]),
        ("disk.size < 30u * GiB", ["usb"]),
        ("glob('/dev/sd[a-z]', disk.dev_path)", ["hdd", "usb"]),
        ("glob('/dev/*', disk.dev_path) && !glob('/dev/sd*', disk.dev_path)", ["nvme"]),
        ('disk.model.startsWith("Samsung")', ["nvme"]),
        ('disk.symlinks.exists(s, s.startsWith("/dev/disk/by-id/nvme-"))', ["nvme"]),
        ("size(disk.symlinks) == 0", ["hdd", "usb"]),
        ("!system_disk", ["nvme", "usb"]),
    ],
)
def test_selects(expression: str, matching: list[str]) -> None:
    selector = compile_selector(expression)
    disks = {"nvme": NVME, "hdd": HDD, "usb": USB}
    selected = [name for name, disk in disks.items() if selector.matches(disk, system_disk=name == "hdd")]
    assert selected == matching


def test_constants() -> None:
    assert SIZE_CONSTANTS["GiB"] == 1024**3
    assert SIZE_CONSTANTS["GB"] == 1000**3
    assert SIZE_CONSTANTS["KiB"] == 1024
    assert SIZE_CONSTANTS["kB"] == SIZE_CONSTANTS["KB"] == 1000
    assert SIZE_CONSTANTS["EiB"] == 1024**6


def test_glob_star_does_not_cross_slashes() -> None:
    assert not compile_selector("glob('*', disk.dev_path)").matches(HDD)
    assert compile_selector("glob('/dev/s?a', disk.dev_path)").matches(HDD)
    assert compile_selector("glob('/dev/sd[^b]', disk.dev_path)").matches(HDD)
    assert not compile_selector("glob('/dev/sd[^a]', disk.dev_path)").matches(HDD)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("disk.size >", "syntax error at line 1, column 11"),
        ("disk.colour == 'red'", "no such field of disk at line 1, column 6"),
        ("disk.size", "expression output type is uint, expected bool"),
        ("dsk.size > 1u", "undeclared reference at line 1, column 1"),
        ("nosuch(disk.size)", "undeclared reference at line 1, column 1"),
    ],
)
def test_compile_errors(expression: str, message: str) -> None:
    with pytest.raises(SelectorError) as raised:
        compile_selector(expression)
    assert str(raised.value) == message


def test_evaluation_error_on_a_disk() -> None:
    selector = compile_selector("disk.symlinks[0] == 'x'")
    with pytest.raises(SelectorError, match=r"^disk selector: index out of range at line 1, column 1$"):
        selector.matches(HDD)


def test_bad_glob_pattern() -> None:
    selector = compile_selector("system_disk && glob('[', disk.dev_path)")
    with pytest.raises(SelectorError, match="glob: syntax error in pattern"):
        selector.matches(HDD, system_disk=True)


def test_selectors_compare_by_text() -> None:
    assert compile_selector("true") == compile_selector("true")
    assert len({compile_selector("true"), compile_selector("true")}) == 1

"""`volumed wipe`: exact output, confirmation, unknown labels and wrong devices (image files)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from volumed.cli import volumed
from volumed.storage import disklayout
from volumed.storage.blockdev import Region
from volumed.storage.gpt import read_partition_table
from volumed.storage.probe import probe_region

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(volumed, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    table = disklayout.create_disk_image(path, 256 * MIB, state_size=16 * MIB)
    with path.open("r+b") as f:
        for p in table.partitions:  # an XFS superblock magic at the start of every partition
            f.seek(p.offset(512))
            f.write(b"XFSB")
    return path


def region(path: Path, label: str) -> Region:
    part = read_partition_table(path).find(label)
    assert part is not None
    return Region(str(path), part.offset(512), part.size(512))


def test_wipe_two_labels_leaves_meta(image: Path) -> None:
    result = invoke("wipe", str(image), "--system-labels-to-wipe", "STATE", "EPHEMERAL")
    assert result.exit_code == 0
    assert result.output == (
        "wiped STATE (partition 2, 16 MiB): xfs\nwiped EPHEMERAL (partition 3, 237 MiB): xfs\n"
    )
    assert probe_region(region(image, "STATE")) is None
    assert probe_region(region(image, "EPHEMERAL")) is None
    assert probe_region(region(image, "META")) is not None
    again = invoke("wipe", str(image), "--system-labels-to-wipe", "STATE")
    assert again.output == "wiped STATE (partition 2, 16 MiB): no signature\n"


def test_repeated_option_form(image: Path) -> None:
    result = invoke(
        "wipe", str(image), "--system-labels-to-wipe", "EPHEMERAL", "--system-labels-to-wipe", "STATE"
    )
    assert result.exit_code == 0
    assert [line.split()[1] for line in result.output.splitlines()] == ["EPHEMERAL", "STATE"]


def test_unknown_label_is_refused_and_nothing_changes(image: Path) -> None:
    before = image.read_bytes()
    result = invoke("wipe", str(image), "--system-labels-to-wipe", "STATE", "BOOT")
    assert result.exit_code == 1
    assert (
        result.output
        == f"Error: {image} has no partition labelled BOOT (labels present: META, STATE, EPHEMERAL)\n"
    )
    assert image.read_bytes() == before


def test_wrong_devices(tmp_path: Path) -> None:
    missing = invoke("wipe", str(tmp_path / "nope.img"), "--system-labels-to-wipe", "STATE")
    assert missing.exit_code == 4
    assert missing.output == f"Error: {tmp_path / 'nope.img'} does not exist\n"
    plain = tmp_path / "plain.img"
    plain.write_bytes(bytes(MIB))
    no_gpt = invoke("wipe", str(plain), "--system-labels-to-wipe", "STATE")
    assert no_gpt.exit_code == 4
    assert no_gpt.output.startswith(f"Error: {plain}: no GPT found (primary header at LBA 1: no 'EFI PART'")


def test_confirmation_on_a_terminal(image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("volumed.cli.wipe._stdin_is_terminal", lambda: True)
    declined = invoke("wipe", str(image), "--system-labels-to-wipe", "STATE", input="n\n")
    assert declined.exit_code == 1
    assert declined.output == (
        f"Wipe STATE on {image}? Their data will be lost. [y/N]: n\nError: aborted, nothing was wiped\n"
    )
    assert probe_region(region(image, "STATE")) is not None
    accepted = invoke("wipe", str(image), "--system-labels-to-wipe", "STATE", input="y\n")
    assert accepted.exit_code == 0
    assert accepted.output.endswith("wiped STATE (partition 2, 16 MiB): xfs\n")
    batch = invoke("wipe", str(image), "--yes", "--system-labels-to-wipe", "EPHEMERAL")
    assert batch.output == "wiped EPHEMERAL (partition 3, 237 MiB): xfs\n"


def test_missing_option_is_a_usage_error(image: Path) -> None:
    result = CliRunner().invoke(volumed, ["wipe", str(image)])
    assert result.exit_code == 2
    assert "Missing option '--system-labels-to-wipe'" in result.output


@pytest.mark.parametrize("size", [0, 512, 1000])
def test_a_disk_too_small_for_a_gpt_says_so(tmp_path: Path, size: int) -> None:
    tiny = tmp_path / "tiny.img"
    tiny.write_bytes(bytes(size))
    result = invoke("wipe", "--yes", str(tiny), "--system-labels-to-wipe", "STATE")
    assert (result.exit_code, result.output) == (
        4,
        f"Error: {tiny}: a device of {size} bytes is too small to hold a GPT\n",
    )
    assert tiny.read_bytes() == bytes(size)

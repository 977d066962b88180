"""`volumed luks read` on a cryptsetup image whose data segment lies (partly) past the device's end: a clear
error and exit 1, as `cryptsetup open` refuses such a device, never an empty payload and exit 0."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from tests.storage.luks2._luks2_helpers import MIB, PASS, cryptsetup, image, key_file
from volumed.cli import volumed
from volumed.storage.luks2._device import Region
from volumed.storage.luks2._header_io import load, write_copies

if TYPE_CHECKING:
    from pathlib import Path

FAST = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
HEADER = 2 * MIB
"""The segment's offset (`--offset`), past a header of --luks2-metadata-size 16k --luks2-keyslots-size 1m."""


def read(*args: object) -> Result:
    return CliRunner().invoke(volumed, ["luks", "read", *map(str, args)], catch_exceptions=False)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    return key_file(tmp_path, PASS)


def luks_format(path: Path, secret: Path) -> Path:
    image(path, 4 * MIB)
    cryptsetup(
        "luksFormat", "--batch-mode", "--type", "luks2", *FAST, "--key-file", secret,
        "--luks2-metadata-size", "16k", "--luks2-keyslots-size", "1m", "--offset", HEADER // 512, path,
    )  # fmt: skip
    return path


def test_the_whole_payload_of_an_intact_image(tmp_path: Path, secret: Path) -> None:
    device = luks_format(tmp_path / "d.img", secret)
    result = read("--key-file", secret, device)
    assert (result.exit_code, len(result.stdout_bytes)) == (0, 2 * MIB)


@pytest.mark.parametrize("size", [HEADER, HEADER - MIB // 2])
def test_a_dynamic_segment_at_or_past_the_end(tmp_path: Path, secret: Path, size: int) -> None:
    device = luks_format(tmp_path / "d.img", secret)
    os.truncate(device, size)
    result = read("--key-file", secret, device)
    assert (result.exit_code, result.stdout_bytes) == (1, b"")
    assert result.stderr == (
        f"{device}: the data segment starts at byte {HEADER}, at or past the end of the device "
        f"({size} bytes): no data to read.\n"
    )


def test_a_sized_segment_ending_past_the_end(tmp_path: Path, secret: Path) -> None:
    """A segment with a fixed size (as cryptsetup writes during reencryption) on a device cut short: refused,
    not read short. The size is set in cryptsetup's header (both copies, valid checksums)."""
    device = luks_format(tmp_path / "d.img", secret)
    with open(device, "r+b") as f:
        region = Region(f)
        state = load(region)
        top = json.loads(state.json_text)
        top["segments"]["0"]["size"] = str(MIB)
        text = json.dumps(top, separators=(",", ":")).encode()
        size = state.binary.json_size
        write_copies(region, state.binary, text + bytes(size - len(text)), state.salts, copies=(0, 1))
    assert json.loads(cryptsetup("luksDump", "--dump-json-metadata", device).stdout)["segments"]["0"][
        "size"
    ] == (str(MIB))
    assert (
        read("--key-file", secret, device).exit_code,
        len(read("--key-file", secret, device).stdout_bytes),
    ) == (
        0,
        MIB,
    )
    os.truncate(device, HEADER + MIB // 2)
    result = read("--key-file", secret, device)
    assert (result.exit_code, result.stdout_bytes) == (1, b"")
    assert result.stderr == (
        f"{device}: the data segment (bytes {HEADER} to {HEADER + MIB}) ends past the end of the device "
        f"({HEADER + MIB // 2} bytes).\n"
    )

"""``/proc/swaps`` as the kernel writes it, and sizes as Talos' SwapStatus writes them (go-humanize)."""

from __future__ import annotations

import pytest

from volumed.controllers.block._swap_status import ibytes
from volumed.storage.filesystem import FilesystemError, SwapEntry, parse_swaps

# Linux 6.1 (mm/swapfile.c swap_show): the path padded to 40 columns, tabs between the other fields.
PROC_SWAPS = (
    "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    "/dev/dm-0                               partition\t65532\t\t1024\t\t-2\n"
    "/var/swap\\040file                       file\t\t1048572\t\t0\t\t10\n"
)


def test_parse_swaps() -> None:
    assert parse_swaps(PROC_SWAPS) == [
        SwapEntry("/dev/dm-0", "partition", 65532 * 1024, 1024 * 1024, -2),
        SwapEntry("/var/swap file", "file", 1048572 * 1024, 0, 10),
    ]
    assert parse_swaps("Filename\tType\tSize\tUsed\tPriority\n") == []


@pytest.mark.parametrize("line", ["/dev/sda2 partition 10", "/dev/sda2 partition ten 0 -2"])
def test_a_malformed_line_is_an_error(line: str) -> None:
    with pytest.raises(FilesystemError, match="invalid swap line in /proc/swaps"):
        parse_swaps(f"Filename Type Size Used Priority\n{line}\n")


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (9, "9 B"),
        (10, "10 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (65532 * 1024, "64 MiB"),
        (16773120, "16 MiB"),
        (1536 * 1024**2, "1.5 GiB"),
    ],
)
def test_ibytes_as_go_humanize(size: int, text: str) -> None:
    assert ibytes(size) == text

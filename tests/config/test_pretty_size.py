"""``disk.pretty_size`` and ``volume.pretty_size`` are Talos' (``SetSize``: go-humanize ``Bytes``), not empty.

Expected strings: go-humanize v1.0.1 (the version Talos v1.12's go.mod pins), ``bytes_test.go`` ``TestBytes``,
the ``Bytes`` rows as upstream wrote them (inputs and outputs copied, not computed here). Before, both fields
were empty and a selector on them matched nothing.
"""

from __future__ import annotations

import pytest

from volumed.config import DiskDescription, VolumeDescription, compile_selector, compile_volume_selector
from volumed.config._pretty_size import pretty_size

KB, MB, GB, TB, PB, EB = (1000**power for power in range(1, 7))

# dustin/go-humanize v1.0.1 bytes_test.go TestBytes (Bytes rows)
UPSTREAM = [
    (0, "0 B"),
    (1, "1 B"),
    (803, "803 B"),
    (999, "999 B"),
    (1024, "1.0 kB"),
    (9999, "10 kB"),
    (MB - 1, "1000 kB"),
    (1024 * 1024, "1.0 MB"),
    (GB - KB, "1000 MB"),
    (GB, "1.0 GB"),
    (TB - MB, "1000 GB"),
    (9999 * 1000, "10 MB"),
    (TB, "1.0 TB"),
    (PB - TB, "999 TB"),
    (PB, "1.0 PB"),
    (EB - PB, "999 PB"),
    (EB, "1.0 EB"),
]


@pytest.mark.parametrize(("size", "expected"), UPSTREAM)
def test_go_humanize_bytes(size: int, expected: str) -> None:
    assert pretty_size(size) == expected


def test_descriptions_fill_it_from_the_size() -> None:
    assert DiskDescription(dev_path="/dev/sda", size=GB).pretty_size == "1.0 GB"
    assert VolumeDescription(dev_path="/dev/sda1", size=9999 * 1000).pretty_size == "10 MB"
    assert DiskDescription(dev_path="/dev/sda", size=GB, pretty_size="given").pretty_size == "given"


def test_selectors_match_on_it() -> None:
    disk = DiskDescription(dev_path="/dev/sdb", size=TB)
    assert compile_selector('disk.pretty_size == "1.0 TB"').matches(disk)
    volume = VolumeDescription(dev_path="/dev/sdb1", size=PB - TB, name="xfs")
    assert compile_volume_selector('volume.pretty_size == "999 TB"').matches(volume, disk)

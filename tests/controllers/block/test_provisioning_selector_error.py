"""A disk selector that fails to evaluate on a disk (a run-time error) is that
volume's clear failure: it used to escape `provision_partition` as a bare `SelectorError`, which the
formatter could only report as an "unexpected error" (logged as a bug)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from volumed.controllers.block._provisioning import ProvisioningError, provision_partition
from volumed.resources import DiskSpec, ProvisioningConfigSpec
from volumed.storage.gpt import new_table, read_partition_table, write_partition_table

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


def data_disk(tmp_path: Path) -> DiskSpec:
    data = tmp_path / "data.img"
    with data.open("wb") as f:
        f.truncate(64 * MIB)
    write_partition_table(data, new_table(64 * MIB))
    return DiskSpec(dev_path=str(data), size=64 * MIB, image=True)


# Each compiles (its check against a sample disk passes), and fails when evaluated on a disk.
FAILING = [
    ("disk.size / 0u > 0u", "evaluation error at line 1, column 1"),
    ('disk.size > "big"', "evaluation error at line 1, column 1"),
]


@pytest.mark.parametrize(("selector", "problem"), FAILING, ids=["division", "types"])
def test_a_selector_that_fails_on_a_disk_is_the_volumes_provisioning_error(
    tmp_path: Path, selector: str, problem: str
) -> None:
    disk = data_disk(tmp_path)
    with pytest.raises(ProvisioningError) as raised:
        provision_partition("u-bad", ProvisioningConfigSpec(disk_selector=selector), [disk])
    message = str(raised.value)
    assert message.startswith(
        f"cannot provision volume u-bad: its diskSelector failed to evaluate on disk {disk.dev_path}: "
    ), message
    assert problem in message
    assert selector not in message  # errors never quote the expression
    assert read_partition_table(disk.dev_path).partitions == ()  # nothing written

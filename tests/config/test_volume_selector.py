"""Volume selectors (ExistingVolumeConfig ``discovery.volumeSelector.match``): Talos' ``volume`` fields, the
volume's ``disk``, and the same refusals as disk selectors."""

from __future__ import annotations

import pytest

from volumed.config import (
    DiskDescription,
    SelectorError,
    VolumeDescription,
    check_config,
    compile_volume_selector,
)

DATA = VolumeDescription(
    dev_path="/dev/sdb1",
    size=64 << 20,
    name="xfs",
    label="archive",
    partition_label="data",
    partition_index=1,
    parent="sdb",
    parent_dev_path="/dev/sdb",
)
DISK = DiskDescription(dev_path="/dev/sdb", size=256 << 20, transport="nvme")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('volume.partition_label == "data"', True),
        ('volume.partition_label == "DATA"', False),
        ('volume.name == "xfs" && volume.label == "archive"', True),
        ("volume.size >= 64u * MiB && volume.partition_index == 1u", True),
        ('volume.type == "partition" && volume.parent_dev_path == "/dev/sdb"', True),
        ('disk.transport == "nvme" && volume.name == "xfs"', True),
        ('disk.transport == "sata"', False),
    ],
)
def test_fields_of_the_volume_and_its_disk(expression: str, expected: bool) -> None:
    assert compile_volume_selector(expression).matches(DATA, DISK) is expected


def test_disk_fields_without_a_disk_are_an_error_not_a_miss() -> None:
    selector = compile_volume_selector('disk.transport == "nvme"')
    with pytest.raises(SelectorError, match=r"^volume selector: undeclared reference"):
        selector.matches(DATA, None)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("", "volume selector is required"),
        ("volume.fstype == 'xfs'", "no such field of volume at line 1, column 8"),
        ("disk.colour == 'red'", "no such field of disk at line 1, column 6"),
        ("volume.size", "expression output type is uint, expected bool"),
        ("volume.name ==", "syntax error at line 1, column"),
    ],
)
def test_refused_at_compile_time(expression: str, problem: str) -> None:
    with pytest.raises(SelectorError) as raised:
        compile_volume_selector(expression)
    assert str(raised.value).startswith(problem)
    assert expression == "" or expression not in str(raised.value)


def test_config_validation_checks_volume_fields() -> None:
    text = (
        "apiVersion: v1alpha1\nkind: ExistingVolumeConfig\nname: e\n"
        "discovery: {volumeSelector: {match: 'volume.fstype == \"xfs\"'}}\n"
    )
    config, issues = check_config(text)
    assert config is None
    assert [str(issue) for issue in issues] == [
        "ExistingVolumeConfig/e: discovery.volumeSelector.match: volume selector is invalid: no such field of"
        " volume at line 1, column 8"
    ]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("volume.io_size == 4096u", True),
        ("volume.block_size == 512u", True),
        ("volume.filesystem_block_size == 4096u", True),
        ("volume.filesystem_block_size == 1024u", False),
        ("volume.probed_size == 60u * MiB", True),
        ("volume.probed_size > volume.size", False),
        ('volume.device_path == "/sys/devices/pci0000:00/0000:00:05.0/block/sdb/sdb1"', True),
        ('volume.device_path.startsWith("/sys/devices/virtual/")', False),
    ],
)
def test_talos_probed_fields(expression: str, expected: bool) -> None:
    """io_size, block_size, filesystem_block_size, probed_size and device_path are discovered (issue 17):
    a selector on them compiles and sees the volume's values (they were refused by name before)."""
    probed = VolumeDescription(
        dev_path="/dev/sdb1",
        size=64 << 20,
        name="xfs",
        io_size=4096,
        block_size=512,
        filesystem_block_size=4096,
        probed_size=60 << 20,
        device_path="/sys/devices/pci0000:00/0000:00:05.0/block/sdb/sdb1",
    )
    assert compile_volume_selector(expression).matches(probed, DISK) is expected


def test_a_field_listed_unsupported_is_refused_by_name() -> None:
    """The refusal that kept unprobed Talos fields out still names the field (none is listed today)."""
    from volumed.config._cel_engine import compile_program
    from volumed.config._volume import VOLUME_FIELDS

    with pytest.raises(SelectorError) as raised:
        compile_program(
            'volume.name == "xfs" && volume.probed_size != 0u',
            variables={"volume": VOLUME_FIELDS},
            unsupported={"volume": frozenset({"probed_size"})},
        )
    assert str(raised.value) == (
        "volume.probed_size is not supported: volumed does not probe it (it would be 0 or empty for every"
        " volume), at line 1, column 32"  # the field name's column
    )

"""`volumed disk create`: exact output, refusal to overwrite, bad sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from click.testing import CliRunner

from volumed.cli import volumed
from volumed.storage.gpt import read_partition_table

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
T = "0fc63daf-8483-4772-8e79-3d69d8477de4"


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(volumed, list(args), catch_exceptions=False)


def test_create_makes_the_installer_layout(tmp_path: Path) -> None:
    """EFI, BIOS, BOOT and META as Talos' installer (GRUB) makes them; STATE and EPHEMERAL: first boot."""
    image = tmp_path / "disk.img"
    result = invoke("disk", "create", str(image), "--size", "5GiB")
    assert result.exit_code == 0
    assert result.output == (
        f"Created {image}: 5 GiB, GPT, 512-byte sectors\n"
        " #  LABEL           START       SIZE  TYPE\n"
        " 1  EFI             1 MiB    100 MiB  c12a7328-f81f-11d2-ba4b-00a0c93ec93b\n"
        " 2  BIOS          101 MiB      1 MiB  21686148-6449-6e6f-744e-656564454649\n"
        f" 3  BOOT          102 MiB    2.0 GiB  {T}\n"
        f" 4  META          2.1 GiB      1 MiB  {T}\n"
        "Free: 2.9 GiB for STATE (100 MiB) and EPHEMERAL (at least 2 GiB), made at first boot\n"
    )
    table = read_partition_table(image)
    assert [(p.name, p.size(512) // MIB) for p in table.partitions] == [
        ("EFI", 100),
        ("BIOS", 1),
        ("BOOT", 2000),
        ("META", 1),
    ]
    assert table.partitions[1].attributes == 1 << 2  # legacy BIOS bootable, as Talos sets it
    small = invoke("disk", "create", str(tmp_path / "small.img"), "--size", "3GiB")
    assert small.exit_code == 0
    assert small.output.splitlines()[-1] == (
        "Free: 968 MiB for STATE (100 MiB) and EPHEMERAL (at least 2 GiB), made at first boot"
        " - too small: 2.1 GiB needed"
    )


def test_create_prints_the_system_layout(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    result = invoke("disk", "create", str(image), "--size", "1GiB", "--layout", "system")
    assert result.exit_code == 0
    assert result.output == (
        f"Created {image}: 1 GiB, GPT, 512-byte sectors\n"
        " #  LABEL           START       SIZE  TYPE\n"
        f" 1  META            1 MiB      1 MiB  {T}\n"
        f" 2  STATE           2 MiB    100 MiB  {T}\n"
        f" 3  EPHEMERAL     102 MiB    921 MiB  {T}\n"
    )
    assert [p.name for p in read_partition_table(image).partitions] == ["META", "STATE", "EPHEMERAL"]


def test_create_with_options_and_force(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(b"old data")
    refused = invoke("disk", "create", str(image), "--size", "512MiB", "--layout", "system")
    assert refused.exit_code == 1
    assert refused.output == f"Error: {image} exists and is not empty; pass --force to overwrite it\n"
    assert image.read_bytes() == b"old data"
    result = invoke(
        "disk",
        "create",
        str(image),
        "--size",
        "512MiB",
        "--layout",
        "system",
        "--state-size",
        "32MiB",
        "--sector-size",
        "4096",
        "--force",
    )
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == f"Created {image}: 512 MiB, GPT, 4096-byte sectors"
    assert result.output.splitlines()[3] == f" 2  STATE           2 MiB     32 MiB  {T}"
    assert read_partition_table(image).sector_size == 4096


def test_create_errors(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    bad = invoke("disk", "create", str(image), "--size", "lots")
    assert bad.exit_code == 1
    assert (
        bad.output
        == "Error: invalid size 'lots': expected a number followed by an optional unit (e.g. 10GiB)\n"
    )
    small = invoke("disk", "create", str(image), "--size", "2GiB")
    assert small.exit_code == 1
    assert small.output == (
        "Error: disk size 2147483648 is too small: Talos' installer partitions need at least"
        " 2206203904 bytes\n"
    )
    small = invoke("disk", "create", str(image), "--size", "50MiB", "--layout", "system")
    assert small.exit_code == 1
    assert small.output == (
        "Error: disk size 52428800 is too small: the Talos layout with a 104857600-byte STATE needs at least "
        "109051904 bytes\n"
    )
    assert not image.exists()


def test_sizes_follow_the_machine_config_rules(tmp_path: Path) -> None:
    """G is 10^9 bytes and GiB 2^30, as in VolumeConfig sizes (Talos' rules): one meaning per unit."""
    decimal, binary = tmp_path / "decimal.img", tmp_path / "binary.img"
    assert invoke("disk", "create", str(decimal), "--size", "3G").exit_code == 0
    assert invoke("disk", "create", str(binary), "--size", "3GiB").exit_code == 0
    assert decimal.stat().st_size == 3 * 10**9
    assert binary.stat().st_size == 3 * 2**30
    odd = tmp_path / "odd.img"
    args = ("--size", "1GiB", "--layout", "system", "--state-size", "32M", "--sector-size", "4096")
    refused = invoke("disk", "create", str(odd), *args)
    assert refused.exit_code == 1
    assert refused.output == "Error: STATE size 32000000 is not a positive multiple of 4096\n"
    assert not odd.exists()


def test_state_size_is_refused_with_the_installer_layout(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    result = invoke("disk", "create", str(image), "--size", "5GiB", "--state-size", "32MiB")
    assert result.exit_code == 1
    assert result.output == (
        "Error: --state-size is for --layout system: with the installer layout STATE is made at first boot\n"
    )
    assert not image.exists()

"""`volumed luks format DEVICE`: create a LUKS2 volume (cryptsetup luksFormat)."""

from __future__ import annotations

from typing import Any

import click

from . import _common
from ._common import (
    EXIT_BAD_ARGUMENTS,
    EXIT_BUSY,
    device_options,
    fail,
    kdf_settings,
    key_file_option,
    key_slot_option,
    luks_errors,
    pbkdf_options,
    read_passphrase,
)


@click.command("format")
@click.argument("device", type=click.Path(dir_okay=False))
@key_file_option
@key_slot_option
@device_options
@pbkdf_options
@click.option(
    "-c", "--cipher", default="aes-xts-plain64", show_default=True, help="Data and key slot cipher."
)
@click.option(
    "-s",
    "--key-size",
    type=click.Choice(["256", "512"]),
    default="512",
    show_default=True,
    help="Volume key size in bits.",
)
@click.option(
    "--sector-size",
    type=click.Choice(["512", "1024", "2048", "4096"]),
    default=None,
    help="Encryption sector size (default: 4096 when the data area is 4 KiB aligned).",
)
@click.option("--label", default="", help="Header label (at most 47 ASCII characters).")
@click.option("--subsystem", default="", help="Header subsystem (at most 47 ASCII characters).")
@click.option("--uuid", default=None, help="Volume UUID (default: random).")
@click.option(
    "--luks2-metadata-size",
    type=int,
    default=16384,
    show_default=True,
    help="Size of one header copy in bytes (16 KiB .. 4 MiB, a power of two).",
)
@click.option("--luks2-keyslots-size", type=int, default=None, help="Size of the key slot area in bytes.")
@click.option("-q", "--batch-mode", is_flag=True, help="Do not ask for confirmation.")
def format_cmd(device: str, batch_mode: bool, **options: Any) -> None:
    """Format DEVICE as LUKS2 with one key slot; destroys what was there.

    On a terminal it asks for confirmation unless --batch-mode.
    """
    from volumed.storage.luks2 import Luks2Volume

    if not batch_mode and _common.stdin_is_terminal():
        click.echo(f"WARNING!\n========\nThis will overwrite data on {device} irrevocably.", err=True)
        answer = click.prompt(
            "Are you sure? (Type 'yes' in capital letters)", default="", show_default=False, err=True
        )
        if answer != "YES":
            fail("Operation aborted.", EXIT_BAD_ARGUMENTS)
    _refuse_in_use(device, options["volume_offset"] or 0, options["volume_size"])
    with luks_errors(device):
        kdf = kdf_settings(options)
        passphrase = read_passphrase(options["key_file"], f"Enter passphrase for {device}", verify=True)
        sector = options["sector_size"]
        volume = Luks2Volume.format(
            device,
            passphrase,
            offset=options["volume_offset"],
            size=options["volume_size"],
            header=options["header"],
            cipher=options["cipher"],
            key_size=int(options["key_size"]) // 8,
            sector_size=int(sector) if sector else None,
            kdf=kdf,
            label=options["label"],
            subsystem=options["subsystem"],
            uuid=options["uuid"],
            metadata_size=options["luks2_metadata_size"],
            keyslots_size=options["luks2_keyslots_size"],
            keyslot=options["key_slot"] or 0,
        )
        volume.close()


def _refuse_in_use(device: str, offset: int, size: int | None) -> None:
    """cryptsetup's "still in use" refusal, by the check `wipe` uses (the kernel's holders, loop devices over
    the bytes, a FUSE server of `volumed run` decrypting them)."""
    from volumed.storage import disklayout
    from volumed.storage.blockdev import BlockDeviceError, Region, RegionBoundsError

    try:
        whole = Region.whole(device)
        region = whole.sub(offset, (whole.size - offset) if size is None else size)
    except (BlockDeviceError, RegionBoundsError, ValueError):
        return  # missing, or too small: the format itself says so
    try:
        disklayout.check_not_in_use(device, region)
    except disklayout.DeviceBusyError as exc:
        fail(f"Cannot format device {device} which is still in use ({exc}).", EXIT_BUSY)
    except BlockDeviceError:
        return  # cannot be opened: the format itself says why

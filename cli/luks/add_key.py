"""`volumed luks add-key DEVICE --new-key-file F`: add a key slot (cryptsetup luksAddKey)."""

from __future__ import annotations

from typing import Any

import click

from ._common import (
    kdf_settings,
    luks_errors,
    new_key_options,
    open_volume,
    out,
    read_key_file,
    read_passphrase,
)


@click.command("add-key")
@new_key_options
def add_key(device: str, new_key_file: str, **options: Any) -> None:
    """Add a key slot for the passphrase in --new-key-file, authorised by an existing passphrase.

    --key-slot chooses the new slot's number (default: the lowest free one). Prints the new slot.
    """
    with luks_errors(device), open_volume(device, options) as volume:
        kdf = kdf_settings(options)
        new = read_key_file(new_key_file)
        passphrase = read_passphrase(options["key_file"], f"Enter any existing passphrase for {device}")
        slot = volume.add_key(new, passphrase=passphrase, keyslot=options["key_slot"], kdf=kdf)
        out(f"Key slot {slot} created.")

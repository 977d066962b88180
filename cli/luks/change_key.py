"""`volumed luks change-key DEVICE --new-key-file F`: replace a passphrase (cryptsetup luksChangeKey)."""

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


@click.command("change-key")
@new_key_options
def change_key(device: str, new_key_file: str, **options: Any) -> None:
    """Replace the passphrase of the key slot the old one opens (or --key-slot); the slot keeps its number.

    The new key material is written to a free part of the key slot area before the header changes and the old
    one is wiped after, so an interruption leaves the old or the new passphrase working. Without room for it
    the change is refused and nothing is written (cryptsetup would overwrite the slot in place).
    Prints the slot.
    """
    with luks_errors(device), open_volume(device, options) as volume:
        kdf = kdf_settings(options)
        new = read_key_file(new_key_file)
        passphrase = read_passphrase(options["key_file"], f"Enter passphrase to be changed for {device}")
        slot = volume.change_key(passphrase, new, keyslot=options["key_slot"], kdf=kdf)
        out(f"Key slot {slot} changed.")

"""Volumes cryptsetup 2.6 writes, opened and changed by us: same volume key, tokens, labels, priorities."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import (
    MIB,
    OTHER,
    PASS,
    PBKDF2_FAST,
    cryptsetup,
    cryptsetup_volume_key,
    image,
    key_file,
)
from volumed.storage.luks2 import Luks2Volume, NoKeyError

if TYPE_CHECKING:
    from pathlib import Path

ARGON2ID = [
    "--pbkdf",
    "argon2id",
    "--pbkdf-memory",
    "32768",
    "--pbkdf-force-iterations",
    "4",
    "--pbkdf-parallel",
    "1",
]
ARGON2I = [
    "--pbkdf",
    "argon2i",
    "--pbkdf-memory",
    "32768",
    "--pbkdf-force-iterations",
    "4",
    "--pbkdf-parallel",
    "1",
]


def pbkdf2(hash_name: str) -> list[str]:
    return ["--pbkdf", "pbkdf2", "--hash", hash_name, "--pbkdf-force-iterations", "1000"]


# format args, add-key args, new slot, detached, extra format args
CASES: dict[str, tuple[list[str], list[str], int, bool, list[str]]] = {
    "argon2id-default": (ARGON2ID, pbkdf2("sha256"), 7, False, []),
    "argon2i-256-512": (ARGON2I, pbkdf2("sha512"), 31, False, ["--key-size", "256", "--sector-size", "512"]),
    "pbkdf2-sha1-label": (
        pbkdf2("sha1"),
        ARGON2ID,
        7,
        False,
        ["--label", "EPHEMERAL", "--subsystem", "talos"],
    ),
    "pbkdf2-sha512-meta64k": (pbkdf2("sha512"), ARGON2I, 1, False, ["--luks2-metadata-size", "65536"]),
    "pbkdf2-sha256-detached": (
        pbkdf2("sha256"),
        pbkdf2("sha1"),
        31,
        True,
        ["--luks2-metadata-size", "262144", "--key-size", "256"],
    ),
    "keyslots-1m": (pbkdf2("sha256"), pbkdf2("sha256"), 2, False, ["--luks2-keyslots-size", "1048576"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_we_open_cryptsetups_volume(tmp_path: Path, name: str) -> None:
    fmt, add, slot, detached, extra = CASES[name]
    device = image(tmp_path / "d.img", 2 * MIB if detached else 20 * MIB)
    header = tmp_path / "h.hdr" if detached else None
    hdr_args: list[object] = ["--header", header] if header else []
    first, second = key_file(tmp_path, PASS), key_file(tmp_path, OTHER)
    cryptsetup(
        "luksFormat", "--batch-mode", "--type", "luks2", *fmt, *extra, *hdr_args, "--key-file", first, device
    )
    cryptsetup(
        "luksAddKey", "--batch-mode", *add, "--key-slot", slot, *hdr_args, "--key-file", first, device, second
    )
    cryptsetup(
        "token",
        "import",
        "--token-id",
        4,
        *hdr_args,
        device,
        stdin=json.dumps({"type": "ext", "keyslots": [str(slot)], "data": "a/b"}).encode(),
    )
    cryptsetup("config", "--priority", "prefer", "--key-slot", slot, *hdr_args, device)
    their_key = cryptsetup_volume_key(device, first, *hdr_args)
    on_disk = json.loads(cryptsetup("luksDump", "--dump-json-metadata", *hdr_args, device).stdout)

    with Luks2Volume.open(device, header=header) as vol:
        assert json.loads(vol.json_text) == on_disk
        assert vol.metadata.to_json().decode() == vol.json_text
        assert vol.unlock(PASS).material == their_key
        assert vol.unlock(PASS).keyslot == 0
        opened = vol.unlock(OTHER)
        assert (opened.material, opened.keyslot) == (their_key, slot)
        assert vol.keyslots[slot].priority == 2
        assert json.loads(vol.export_token(4)) == {"type": "ext", "keyslots": [str(slot)], "data": "a/b"}
        if "--label" in extra:
            assert (vol.label, vol.subsystem) == ("EPHEMERAL", "talos")
        with pytest.raises(NoKeyError):
            vol.unlock(PASS, keyslot=slot)
        # and back: our changes on their header, checked by cryptsetup
        vol.kill_slot(0)
        new_slot = vol.add_key(b"third", volume_key=opened, kdf=PBKDF2_FAST)
    third = key_file(tmp_path, b"third")
    cryptsetup("open", "--test-passphrase", "--key-slot", new_slot, "--key-file", third, *hdr_args, device)
    assert cryptsetup_volume_key(device, third, *hdr_args) == their_key
    assert (
        cryptsetup(
            "open", "--test-passphrase", "--key-file", first, *hdr_args, device, check=False
        ).returncode
        == 2
    )
    assert json.loads(cryptsetup("token", "export", "--token-id", 4, *hdr_args, device).stdout)[
        "keyslots"
    ] == [str(slot)]


def test_header_backup_opens_as_a_detached_header(tmp_path: Path) -> None:
    device = image(tmp_path / "d.img", 20 * MIB)
    first = key_file(tmp_path, PASS)
    cryptsetup("luksFormat", "--batch-mode", *pbkdf2("sha256"), "--key-file", first, device)
    backup = tmp_path / "backup.hdr"
    cryptsetup("luksHeaderBackup", "--header-backup-file", backup, device)
    assert backup.stat().st_size == 16 * MIB
    with Luks2Volume.open(device, header=backup, read_only=True) as vol:
        assert vol.unlock(PASS).material == cryptsetup_volume_key(device, first)
        assert vol.segment.offset == 16 * MIB

"""Headers we write, read by the real cryptsetup 2.6: dump, test-passphrase, volume key, tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import (
    ARGON2I_FAST,
    ARGON2ID_FAST,
    MIB,
    OTHER,
    PASS,
    PBKDF2_FAST,
    cryptsetup,
    cryptsetup_volume_key,
    image,
    key_file,
)
from volumed.storage.luks2 import KdfSettings, Luks2Volume

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Case:
    kdf: KdfSettings
    second_kdf: KdfSettings
    key_bits: int = 512
    sector: int = 4096
    first_slot: int = 0
    second_slot: int = 7
    label: str = ""
    metadata_size: int = 16384
    detached: bool = False
    priority: int | None = None


def pbkdf2(hash_name: str) -> KdfSettings:
    return KdfSettings(type="pbkdf2", hash=hash_name, iterations=1000)


CASES = {
    "argon2id-512-4096": Case(ARGON2ID_FAST, pbkdf2("sha256")),
    "argon2i-256-512-slot31": Case(ARGON2I_FAST, pbkdf2("sha1"), key_bits=256, sector=512, second_slot=31),
    "pbkdf2-sha1-label": Case(pbkdf2("sha1"), ARGON2ID_FAST, label="STATE", first_slot=7, second_slot=0),
    "pbkdf2-sha256-prefer": Case(pbkdf2("sha256"), pbkdf2("sha512"), priority=2, second_slot=31),
    "pbkdf2-sha512-256-meta64k": Case(pbkdf2("sha512"), ARGON2I_FAST, key_bits=256, metadata_size=65536),
    "detached-meta1m-slot31": Case(
        PBKDF2_FAST,
        pbkdf2("sha512"),
        detached=True,
        metadata_size=1 << 20,
        first_slot=31,
        second_slot=7,
        sector=512,
    ),
    "meta4m-ignore-priority": Case(PBKDF2_FAST, ARGON2ID_FAST, metadata_size=4 << 20, priority=0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_cryptsetup_reads_our_volume(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    device = image(tmp_path / "d.img", 2 * MIB if case.detached else 20 * MIB)
    header = tmp_path / "h.hdr" if case.detached else None
    target = header or device
    hdr_args: list[object] = ["--header", header] if header else []
    first, second = key_file(tmp_path, PASS), key_file(tmp_path, OTHER)

    with Luks2Volume.format(
        device,
        PASS,
        header=header,
        kdf=case.kdf,
        key_size=case.key_bits // 8,
        sector_size=case.sector,
        keyslot=case.first_slot,
        label=case.label,
        metadata_size=case.metadata_size,
    ) as vol:
        vol.add_key(OTHER, passphrase=PASS, keyslot=case.second_slot, kdf=case.second_kdf)
        vol.import_token(
            {"type": "volumed-test", "keyslots": [str(case.second_slot)], "v": "x/ü"}, token_id=3
        )
        if case.priority is not None:
            vol.set_priority(case.second_slot, case.priority)
        ours_key = vol.unlock(PASS).material
        ours_json = vol.json_text

    assert cryptsetup("isLuks", "--type", "luks2", target).returncode == 0
    dumped = cryptsetup("luksDump", *hdr_args, device).stdout
    assert f"Label:         \t{case.label or '(no label)'}" in dumped
    assert f"Metadata area: \t{case.metadata_size} [bytes]" in dumped
    assert json.loads(cryptsetup("luksDump", "--dump-json-metadata", *hdr_args, device).stdout) == json.loads(
        ours_json
    )
    # cryptsetup did not need to repair or rewrite anything
    with Luks2Volume.open(device, header=header, read_only=True) as vol:
        assert vol.json_text == ours_json
        assert vol.seqid == 4 + (case.priority is not None) + 1

    for secret_file, slot in ((first, case.first_slot), (second, case.second_slot)):
        cryptsetup(
            "open", "--test-passphrase", "--key-slot", slot, "--key-file", secret_file, *hdr_args, device
        )
    if case.priority != 0:
        cryptsetup("open", "--test-passphrase", "--key-file", second, *hdr_args, device)
    wrong = cryptsetup(
        "open",
        "--test-passphrase",
        "--key-slot",
        case.first_slot,
        "--key-file",
        second,
        *hdr_args,
        device,
        check=False,
    )
    assert wrong.returncode == 2
    assert cryptsetup_volume_key(device, first, *hdr_args) == ours_key
    exported = cryptsetup("token", "export", "--token-id", 3, *hdr_args, device).stdout
    assert json.loads(exported) == {"type": "volumed-test", "keyslots": [str(case.second_slot)], "v": "x/ü"}
    # cryptsetup rewrites the header from its own parse: the JSON bytes must come out exactly as ours
    cryptsetup("config", "--label", "rewritten", *hdr_args, device)
    with Luks2Volume.open(device, header=header, read_only=True) as vol:
        assert vol.label == "rewritten"
        assert vol.json_text == ours_json


def test_cryptsetup_adds_a_key_to_our_volume_and_we_open_it(tmp_path: Path) -> None:
    device = image(tmp_path / "d.img", 20 * MIB)
    first, second = key_file(tmp_path, PASS), key_file(tmp_path, OTHER)
    with Luks2Volume.format(device, PASS, kdf=PBKDF2_FAST) as vol:
        key = vol.unlock(PASS)
    cryptsetup(
        "luksAddKey",
        "--batch-mode",
        "--pbkdf",
        "pbkdf2",
        "--pbkdf-force-iterations",
        "1000",
        "--key-slot",
        "5",
        "--key-file",
        first,
        device,
        second,
    )
    with Luks2Volume.open(device) as vol:
        assert vol.unlock(OTHER) == key
        assert vol.unlock(OTHER).keyslot == 5

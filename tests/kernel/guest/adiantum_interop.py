"""Adiantum against the real kernel: cryptsetup and volumed on ``xchacha12/xchacha20,aes-adiantum-plain64``.

1. cryptsetup formats ``device`` with xchacha12 adiantum and writes random data through its own mapping;
   volumed's library unlocks it (the key slot area is adiantum too: our userspace Adiantum) and gets the
   volume key cryptsetup dumps; volumed's dm activation reads the same bytes cryptsetup's mapping showed.
2. volumed adds slot 3 and changes slot 0's passphrase on that header: ``cryptsetup open --test-passphrase``
   accepts both (the kernel decrypts the key slot areas volumed wrote), refuses the old passphrase, and slot 3
   after volumed kills it.
3. volumed formats ``other_device`` with xchacha20 adiantum and writes through its dm mapping; cryptsetup
   opens it and reads the same bytes.

Params: ``device``, ``other_device``, ``passphrase``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from volumed.storage.activation import DmActivator
from volumed.storage.luks2 import KdfSettings, Luks2Volume

from ._support import Scenario, run_scenario
from ._volumes import data_segment, dm_devices, dm_table

XCHACHA12 = "xchacha12,aes-adiantum-plain64"
XCHACHA20 = "xchacha20,aes-adiantum-plain64"
PBKDF2 = KdfSettings(type="pbkdf2", iterations=1000)
FAST = ("--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")
MIB = 1 << 20
SPAN = 4 * MIB
"""Bytes written and compared at the start of each decrypted device (and one MiB at its end)."""


def write_random(path: str, seed: bytes) -> None:
    """Deterministic pseudo-random data at the start and end of the decrypted device ``path``."""
    with open(path, "r+b") as device:
        size = device.seek(0, os.SEEK_END)
        device.seek(0)
        device.write(hashlib.shake_256(seed + b"head").digest(SPAN))
        device.seek(size - MIB)
        device.write(hashlib.shake_256(seed + b"tail").digest(MIB))
        device.flush()
        os.fsync(device.fileno())


def view(path: str) -> dict[str, str]:
    """sha256 of the first SPAN bytes and of the last MiB of ``path``, as its reader sees them (a mapping made
    after the data was written has nothing cached: it reads the disk)."""
    with open(path, "rb") as device:
        size = device.seek(0, os.SEEK_END)
        device.seek(0)
        head = device.read(SPAN)
        device.seek(size - MIB)
        tail = device.read(MIB)
    return {
        "head": hashlib.sha256(head).hexdigest(),
        "tail": hashlib.sha256(tail).hexdigest(),
        "size": str(size),
    }


def volume_key_of(s: Scenario, device: str, passphrase: bytes) -> str:
    out = s.run(
        "cryptsetup",
        "luksDump",
        "--dump-volume-key",
        "--batch-mode",
        "--key-file=-",
        device,
        stdin=passphrase,
    ).stdout
    # luksDump prints the key as "MK dump:" followed by hex bytes; never printed by us, only compared
    return "".join(re.findall(r"\b[0-9a-f]{2}\b", out.split("MK dump:", 1)[1]))


def opens_with(s: Scenario, device: str, passphrase: bytes, slot: int | None = None) -> int:
    argv = ["cryptsetup", "open", "--test-passphrase", "--key-file=-", device]
    if slot is not None:
        argv[3:3] = ["--key-slot", str(slot)]
    return s.run(*argv, stdin=passphrase, check=False).returncode


def main(s: Scenario) -> None:
    device, other = s.params["device"], s.params["other_device"]
    passphrase = s.params["passphrase"].encode()
    activator = DmActivator()

    s.step("the guest kernel's adiantum modules")
    modules = {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}
    s.record("modules", sorted(modules & {"adiantum", "chacha_generic", "nhpoly1305", "libpoly1305"}))
    s.check({"adiantum", "chacha_generic", "nhpoly1305"} <= modules, f"adiantum modules missing: {modules}")

    s.step(f"cryptsetup luksFormat -c {XCHACHA12} -s 256 {device}")
    s.run(
        "cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "-c", XCHACHA12, "-s", "256", *FAST,
        "--key-file=-", device, stdin=passphrase,
    )  # fmt: skip
    dump = s.run("cryptsetup", "luksDump", device).stdout
    s.record("cryptsetup_keyslot_area_cipher", re.findall(r"Cipher:\s+(\S+)", dump))

    s.step("write through cryptsetup's mapping, note what it shows, close")
    s.run("cryptsetup", "open", "--key-file=-", device, "peer", stdin=passphrase)
    theirs_table = dm_table(s, "peer")
    write_random("/dev/mapper/peer", b"cryptsetup")
    theirs = view("/dev/mapper/peer")
    s.run("cryptsetup", "close", "peer")
    s.record("cryptsetup_view", theirs)
    expected_key = volume_key_of(s, device, passphrase)

    s.step("volumed unlocks the header cryptsetup made (adiantum key slot area) and activates it on dm")
    with Luks2Volume.open(device) as volume:
        s.record("area_encryption", volume.keyslots[0].area_encryption)
        key = volume.unlock(passphrase)
        segment = data_segment(volume, device)
    s.check(key.hex() == expected_key, "volumed's volume key differs from cryptsetup's --dump-volume-key")
    s.note("the volume key volumed unlocked is the one cryptsetup dumps")
    mapped = activator.activate("luks2-ADIANTUM", segment, key.material)
    ours_table = dm_table(s, "luks2-ADIANTUM")
    ours = view(mapped)
    activator.deactivate("luks2-ADIANTUM")
    s.record("volumed_view", ours)
    s.record("tables", {"ours": ours_table, "cryptsetup": theirs_table})
    s.check(ours == theirs, f"volumed's dm mapping shows {ours}, cryptsetup's showed {theirs}")
    for field in ("sectors", "target", "cipher", "iv_offset", "device", "offset", "options"):
        s.check(
            ours_table[field] == theirs_table[field],
            f"dm tables differ in {field}: {ours_table} {theirs_table}",
        )

    s.step("volumed adds slot 3 and changes slot 0; cryptsetup --test-passphrase accepts what volumed wrote")
    with Luks2Volume.open(device) as volume:
        volume.add_key(b"volumed slot 3", volume_key=key, keyslot=3)
        volume.change_key(passphrase, b"volumed changed slot 0", keyslot=0)
    codes = {
        "slot3": opens_with(s, device, b"volumed slot 3", 3),
        "slot0_changed": opens_with(s, device, b"volumed changed slot 0", 0),
        "old_passphrase": opens_with(s, device, passphrase),
    }
    with Luks2Volume.open(device) as volume:
        volume.kill_slot(3)
    codes["slot3_killed"] = opens_with(s, device, b"volumed slot 3")
    s.record("test_passphrase_codes", codes)
    s.check(
        codes["slot3"] == 0 and codes["slot0_changed"] == 0, f"cryptsetup refused volumed's slots: {codes}"
    )
    s.check(
        codes["old_passphrase"] != 0 and codes["slot3_killed"] != 0, f"old/killed keys still open: {codes}"
    )

    s.step(f"volumed formats {other} with {XCHACHA20}, writes through its dm mapping; cryptsetup reads it")
    with Luks2Volume.format(other, passphrase, cipher=XCHACHA20, key_size=32, kdf=PBKDF2, label="ADIANTUM20"):
        pass
    dump = s.run("cryptsetup", "luksDump", other).stdout
    s.record("volumed_format_dump_ciphers", re.findall(r"[Cc]ipher:\s+(\S+)", dump))
    s.check(opens_with(s, other, passphrase) == 0, "cryptsetup refused the passphrase of volumed's format")
    with Luks2Volume.open(other) as volume:
        key20 = volume.unlock(passphrase)
        segment20 = data_segment(volume, other)
    mapped = activator.activate("luks2-ADIANTUM20", segment20, key20.material)
    write_random(mapped, b"volumed")
    ours20 = view(mapped)
    activator.deactivate("luks2-ADIANTUM20")
    s.run("cryptsetup", "open", "--key-file=-", other, "peer20", stdin=passphrase)
    theirs20 = view("/dev/mapper/peer20")
    s.run("cryptsetup", "close", "peer20")
    s.record("xchacha20_views", {"volumed": ours20, "cryptsetup": theirs20})
    s.check(ours20 == theirs20, f"cryptsetup reads {theirs20}, volumed wrote {ours20}")
    s.run("dmsetup", "mknodes")
    s.check(dm_devices() == {}, f"dm devices left: {dm_devices()}")


if __name__ == "__main__":
    run_scenario(main)

"""What a key slot's KDF costs to run (`kdf_load`: the threads and memory that decide how many run at once),
read from headers the real cryptsetup wrote with the parameters given here."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import PASS, cryptsetup, image, key_file
from volumed.storage.luks2 import KdfLoad, KdfSettings, Luks2Volume, kdf_load

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.interop

MIB = 1 << 20


def _dumped_kdf(device: Path) -> tuple[int, int]:
    """Threads and memory (KiB) of slot 0 as ``cryptsetup luksDump`` prints them (pbkdf2: 1 and 0)."""
    dump = cryptsetup("luksDump", device).stdout
    threads = re.search(r"^\s*Threads:\s*(\d+)", dump, re.MULTILINE)
    memory = re.search(r"^\s*Memory:\s*(\d+)", dump, re.MULTILINE)
    if threads is None or memory is None:
        assert "PBKDF:      pbkdf2" in dump, dump
        return 1, 0
    return int(threads[1]), int(memory[1])


@pytest.mark.parametrize(
    "pbkdf_args",
    [
        ["--pbkdf", "argon2id", "--pbkdf-memory", "32768", "--pbkdf-parallel", "1"],
        ["--pbkdf", "argon2i", "--pbkdf-memory", "65536", "--pbkdf-parallel", "2"],
        ["--pbkdf", "argon2id", "--pbkdf-memory", "65536", "--pbkdf-parallel", "4"],
        ["--pbkdf", "pbkdf2", "--hash", "sha256"],
    ],
)
@pytest.mark.parametrize("cpus", [1, 8])
def test_load_of_cryptsetup_made_slots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pbkdf_args: list[str], cpus: int
) -> None:
    monkeypatch.setattr("volumed.storage.luks2._kdf.usable_cpus", lambda: cpus)
    device = image(tmp_path / "disk.img", 20 * MIB)
    force = ["--pbkdf-force-iterations", "1000" if "pbkdf2" in pbkdf_args else "4"]
    cryptsetup(
        "luksFormat", "--type", "luks2", "--batch-mode", "--key-file", key_file(tmp_path, PASS),
        *pbkdf_args, *force, device,
    )  # fmt: skip
    lanes, memory_kib = _dumped_kdf(device)
    with Luks2Volume.open(str(device), read_only=True) as volume:
        # the lanes run on at most as many threads as there are usable CPUs (argon2_raw)
        assert kdf_load(volume.keyslots[0].kdf) == KdfLoad(min(lanes, cpus), memory_kib)


def test_load_of_new_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("volumed.storage.luks2._kdf.usable_cpus", lambda: 2)
    monkeypatch.setattr("volumed.storage.luks2._kdf._ram_kib", lambda: 4 * 1024 * 1024)
    pinned = KdfSettings(type="argon2id", iterations=4, memory_kib=65536, parallel=1)
    assert pinned.load() == KdfLoad(1, 65536)
    # cryptsetup's defaults: min(4, CPUs) lanes, min(1 GiB, half the RAM)
    assert KdfSettings(type="argon2id", iterations=4).load() == KdfLoad(2, 1024 * 1024)
    assert KdfSettings(type="pbkdf2", iterations=1000).load() == KdfLoad(1, 0)
    # a benchmark measures this machine: it runs alone, on every CPU
    assert KdfSettings(type="argon2id", memory_kib=65536, parallel=1).load() == KdfLoad(2, 65536)

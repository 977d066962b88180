"""The header lock covers one volume's own bytes: two volumes of one image file never wait for each other,
while two writers of the same header still exclude each other (threads and processes)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.storage.luks2._luks2_helpers import MIB, OTHER, PASS, PBKDF2_FAST, SMALL, image
from volumed.storage.luks2 import BusyError, Luks2Volume, ReadOnlyError, _device, _format

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Two 3 MiB partitions of one image file, as the formatter locates STATE and EPHEMERAL on a disk image.
A = {"offset": 1 * MIB, "size": 3 * MIB}
B = {"offset": 4 * MIB, "size": 3 * MIB}


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An image with volume B formatted and A's partition blank; a short lock timeout, so a lock that is
    wrongly shared fails in a fraction of a second rather than after 5 s."""
    monkeypatch.setattr(_device, "LOCK_TIMEOUT_S", 0.3)
    path = image(tmp_path / "disk.img", 8 * MIB)
    Luks2Volume.format(path, PASS, kdf=PBKDF2_FAST, **SMALL, **B).close()  # type: ignore[arg-type]
    return path


@pytest.fixture
def kdf_gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """(inside, release): a format's key slot KDF signals ``inside`` and waits for ``release`` — a slow KDF
    that ends when the test says, not after a guessed time."""
    inside, release = threading.Event(), threading.Event()
    real = _format.build_keyslot

    def slow_build_keyslot(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        assert release.wait(60), "the test never released the format's KDF"
        return real(*args, **kwargs)

    monkeypatch.setattr(_format, "build_keyslot", slow_build_keyslot)
    yield inside, release
    release.set()


def test_a_format_in_its_kdf_does_not_lock_another_volume_of_the_same_image(
    disk: Path, kdf_gate: tuple[threading.Event, threading.Event]
) -> None:
    """The reported fault: STATE and EPHEMERAL formatted at once on one image, one of them failed with
    "the header is locked by another process" (the lock was flock() on the whole file, held across the
    format's KDF)."""
    inside, release = kdf_gate
    errors: list[BaseException] = []

    def format_a() -> None:
        try:
            Luks2Volume.format(disk, OTHER, kdf=PBKDF2_FAST, **SMALL, **A).close()  # type: ignore[arg-type]
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    worker = threading.Thread(target=format_a)
    worker.start()
    try:
        assert inside.wait(30), "the format never reached its KDF"
        with Luks2Volume.open(disk, **B) as b:  # before the fix: BusyError after LOCK_TIMEOUT_S
            key = b.unlock(PASS)
            b.add_key(OTHER, volume_key=key, kdf=PBKDF2_FAST)
            b.set_label(label="EPHEMERAL")
            with b.payload(key) as stream:
                stream.write(b"written while A formats")
    finally:
        release.set()
        worker.join(60)
    assert not errors, errors
    with Luks2Volume.open(disk, **A) as a, Luks2Volume.open(disk, **B) as b:
        assert a.unlock(OTHER).keyslot == 0
        assert b.label == "EPHEMERAL"
        assert b.unlock(OTHER).keyslot == 1
        with b.payload(b.unlock(PASS)) as stream:
            assert stream.read(23) == b"written while A formats"


def test_the_same_header_is_still_locked_while_it_is_formatted(
    disk: Path, kdf_gate: tuple[threading.Event, threading.Event]
) -> None:
    """Another open file of the volume being formatted waits for the format and gives up with BusyError."""
    inside, release = kdf_gate
    worker = threading.Thread(
        target=lambda: Luks2Volume.format(disk, OTHER, kdf=PBKDF2_FAST, **SMALL, **A).close()  # type: ignore[arg-type]
    )
    worker.start()
    try:
        assert inside.wait(30), "the format never reached its KDF"
        with pytest.raises(BusyError, match="locked by another process"):
            Luks2Volume.open(disk, **A)
    finally:
        release.set()
        worker.join(60)
    with Luks2Volume.open(disk, **A) as a:
        assert a.unlock(OTHER).keyslot == 0


def test_two_open_files_of_one_header_exclude_each_other_and_not_their_neighbour(disk: Path) -> None:
    with Luks2Volume.open(disk, **B) as first, Luks2Volume.open(disk, **B) as second:
        with first.data_region.locked(exclusive=True):
            with pytest.raises(BusyError, match="locked by another process"):
                second.set_label(label="late")
            with pytest.raises(BusyError):
                Luks2Volume.open(disk, **B)
            with (
                open(disk, "r+b") as f,  # the free partition A, another range of the same file
                _device.Region(f, **A).locked(exclusive=True, timeout=0),
            ):
                pass
        with first.data_region.locked(exclusive=False), second.data_region.locked(exclusive=False):
            pass  # readers share
        second.set_label(label="now")
    with Luks2Volume.open(disk, **B) as b:
        assert b.label == "now"


def test_a_read_only_volume_takes_no_write_lock(disk: Path) -> None:
    with Luks2Volume.open(disk, read_only=True, **B) as vol:
        with vol.data_region.locked(exclusive=False):
            pass
        with pytest.raises(ReadOnlyError, match="read-only"), vol.data_region.locked(exclusive=True):
            pass


_HOLDER = """
import sys
from volumed.storage.luks2._device import Region
with open(sys.argv[1], "r+b") as f:
    with Region(f, offset=int(sys.argv[2]), size=int(sys.argv[3])).locked(exclusive=True):
        print("held", flush=True)
        sys.stdin.read()
"""


def test_a_lock_held_by_another_process_covers_its_volume_only(disk: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(disk), str(B["offset"]), str(B["size"])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(BusyError, match="locked by another process"):
            Luks2Volume.open(disk, **B)
        Luks2Volume.format(disk, OTHER, kdf=PBKDF2_FAST, **SMALL, **A).close()  # type: ignore[arg-type]
    finally:
        holder.communicate("", timeout=30)
    with Luks2Volume.open(disk, **A) as a, Luks2Volume.open(disk, **B) as b:
        assert a.unlock(OTHER).keyslot == 0
        assert b.unlock(PASS).keyslot == 0


_WRITER = """
import sys
from volumed.storage.luks2 import BusyError, ConcurrentUpdateError, Luks2Volume
path, offset, size, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for token_id in range(first, first + 12):
    while True:
        try:
            with Luks2Volume.open(path, offset=offset, size=size) as vol:
                vol.import_token({"type": "writer", "keyslots": [], "n": token_id}, token_id=token_id)
            break
        except (BusyError, ConcurrentUpdateError):
            continue
print("done", flush=True)
"""


def test_two_processes_writing_one_header_lose_no_update(disk: Path) -> None:
    """Two processes import 12 tokens each into volume B while A is left alone: every commit lands (a
    concurrent writer is locked out or sees ConcurrentUpdateError and retries), none is lost or torn."""
    with Luks2Volume.open(disk, **B) as b:
        seqid = b.seqid
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(disk), str(B["offset"]), str(B["size"]), str(first)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for first in (0, 12)
    ]
    for writer in writers:
        out, _ = writer.communicate(timeout=120)
        assert (writer.returncode, out) == (0, "done\n")
    with Luks2Volume.open(disk, **B) as b:
        assert b.header_problems == ()
        assert b.seqid == seqid + 24
        assert {i: json.loads(b.export_token(i))["n"] for i in b.tokens} == {i: i for i in range(24)}
        assert b.unlock(PASS).keyslot == 0


def _locks_on(path: Path) -> set[tuple[str, str, str, str]]:
    """(kind, access, first byte, last byte) of every lock /proc/locks lists on ``path``'s inode."""
    inode = f":{path.stat().st_ino}"
    found = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1] == "->":  # a waiter, not a holder
            continue
        if fields[5].endswith(inode):
            found.add((fields[1], fields[3], fields[6], fields[7]))
    return found


def test_the_lock_a_volume_takes_on_its_file(disk: Path, tmp_path: Path) -> None:
    """A partition of an image: an OFD lock over its bytes, no flock. A volume at offset 0 (a whole image,
    as cryptsetup addresses it): flock() on the file too, which is what cryptsetup takes on regular files."""
    with Luks2Volume.open(disk, **B) as b, b.data_region.locked(exclusive=True):
        last = str(B["offset"] + B["size"] - 1)
        assert _locks_on(disk) == {("OFDLCK", "WRITE", str(B["offset"]), last)}
    assert _locks_on(disk) == set()
    whole = image(tmp_path / "whole.img", 3 * MIB)
    with (
        Luks2Volume.format(whole, PASS, kdf=PBKDF2_FAST, **SMALL) as vol,  # type: ignore[arg-type]
        vol.data_region.locked(exclusive=False),
    ):
        assert _locks_on(whole) == {("FLOCK", "READ", "0", "EOF"), ("OFDLCK", "READ", "0", "EOF")}

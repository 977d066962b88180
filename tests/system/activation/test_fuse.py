"""The fuse backend for real (root): FUSE server + loop + mkfs.ext4 + mount, reactivation, crash recovery,
and cryptsetup decrypting what went through it. Everything is torn down (unmount, loops, servers by PID)
even on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root, require_tool
from tests.system.activation.conformance import check_lifecycle
from volumed.storage import loop
from volumed.storage.activation import (
    ActivationConflictError,
    ActivationError,
    DataSegment,
    FuseActivator,
    mapping_name,
)
from volumed.storage.luks2.payload import PayloadStream

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MiB = 1 << 20
NAME = mapping_name("TEST")


def run(*argv: str | Path, input: bytes | None = None) -> str:
    result = subprocess.run([str(arg) for arg in argv], input=input, capture_output=True, check=False)
    assert result.returncode == 0, f"{argv}: {result.stderr.decode(errors='replace')}"
    return result.stdout.decode(errors="replace")


class Volume:
    """A LUKS2 image with a detached header made by cryptsetup, and its volume key as cryptsetup tells it."""

    def __init__(self, directory: Path, *, sector_size: int, size: int = 32 * MiB) -> None:
        self.image = directory / "data.img"
        self.header = directory / "data.hdr"
        self.key_file = directory / "key"
        self.key_file.write_bytes(b"system test passphrase")
        with self.image.open("wb") as handle:
            handle.truncate(size)
        cryptsetup = require_tool("cryptsetup")
        run(
            cryptsetup, "luksFormat", "--batch-mode", "--type", "luks2", "--header", self.header,
            "--key-file", self.key_file, "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
            "--sector-size", str(sector_size), self.image,
        )  # fmt: skip
        dump = run(cryptsetup, "luksDump", "--dump-volume-key", "--batch-mode", "--key-file", self.key_file,
                   self.header)  # fmt: skip
        self.key = bytes.fromhex("".join(re.findall(r"\b[0-9a-f]{2}\b", dump.split("MK dump:", 1)[1])))
        self.segment = DataSegment(device=str(self.image), offset=0, size=None, sector_size=sector_size)

    def decrypt_with_cryptsetup(self) -> None:
        run(
            require_tool("cryptsetup"), "reencrypt", "--decrypt", "--batch-mode", "--header", self.header,
            "--force-offline-reencrypt", "--key-file", self.key_file, self.image,
        )  # fmt: skip


class Mounts:
    """Mount points made by a test, unmounted at teardown whatever happened."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.targets: list[Path] = []
        self.made = 0

    def mount(self, device: str) -> Path:
        self.made += 1
        target = self.directory / f"mnt{self.made}"
        target.mkdir()
        run("mount", device, target)
        self.targets.append(target)
        return target

    def umount(self, target: Path) -> None:
        run("umount", target)
        self.targets.remove(target)

    def close(self) -> None:
        for target in self.targets:
            subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


@pytest.fixture
def activator(tmp_path: Path) -> Iterator[FuseActivator]:
    require_root()
    require_tool("mkfs.ext4")
    require_tool("fusermount3")
    fuse = FuseActivator(runtime_dir=tmp_path / "run")
    yield fuse
    _tear_down(fuse, tmp_path)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    tracked = Mounts(tmp_path)
    yield tracked
    tracked.close()


def _tear_down(fuse: FuseActivator, tmp_path: Path) -> None:
    """Whatever a failed test left: mounts on our loops, the loops, the FUSE mount, the server (by PID)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        targets = [line.split(" ")[4] for line in table]
    for target in targets:
        if target.startswith(str(tmp_path)) and "/run/" not in target:
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    state_file = tmp_path / "run" / f"{NAME}.json"
    pid = json.loads(state_file.read_text())["pid"] if state_file.exists() else None
    for device in loop.find_attachments(fuse.decrypted_file(NAME)):
        with contextlib.suppress(loop.LoopError):
            loop.detach(device)
    with contextlib.suppress(ActivationError):
        fuse.deactivate(NAME)
    if isinstance(pid, int):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["umount", "-l", str(fuse.mountpoint(NAME))], check=False, capture_output=True)


def server_pid(fuse: FuseActivator) -> int:
    state = json.loads((fuse.mountpoint(NAME).parent / f"{NAME}.json").read_text())
    pid = state["pid"]
    assert isinstance(pid, int)
    return pid


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_lifecycle_and_cryptsetup_decrypts_what_went_through_fuse(
    tmp_path: Path, activator: FuseActivator, sector_size: int
) -> None:
    volume = Volume(tmp_path, sector_size=sector_size)
    payload = check_lifecycle(activator, NAME, volume.segment, volume.key, tmp_path, size=32 * MiB)
    assert not activator.mountpoint(NAME).exists()
    assert loop.find_attachments(activator.decrypted_file(NAME)) == []

    # what went through FUSE is a real LUKS2 payload: cryptsetup decrypts it to our ext4
    volume.decrypt_with_cryptsetup()
    listing = run(require_tool("debugfs"), "-R", "ls -l /", volume.image)
    assert "file.bin" in listing
    assert str(len(payload)) in listing


def test_key_is_not_in_the_servers_argv_or_environment(tmp_path: Path, activator: FuseActivator) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=8 * MiB)
    activator.activate(NAME, volume.segment, volume.key)
    pid = server_pid(activator)
    for part in ("cmdline", "environ"):
        with open(f"/proc/{pid}/{part}", "rb") as exposed:
            text = exposed.read()
        assert volume.key.hex().encode() not in text
        assert volume.key not in text
    activator.deactivate(NAME)


def test_server_outlives_the_process_that_started_it(tmp_path: Path, activator: FuseActivator) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=8 * MiB)
    script = (
        "import sys\n"
        "from volumed.storage.activation import DataSegment, FuseActivator\n"
        f"fuse = FuseActivator(runtime_dir={str(tmp_path / 'run')!r})\n"
        f"segment = DataSegment(device={str(volume.image)!r}, offset=0, size=None, sector_size=4096)\n"
        f"print(fuse.activate({NAME!r}, segment, sys.stdin.buffer.read()))\n"
    )
    device = run(sys.executable, "-c", script, input=volume.key).strip()
    status = activator.status(NAME)
    assert status.active
    assert status.device == device
    with open(device, "rb") as block:
        assert len(block.read(4096)) == 4096
    activator.deactivate(NAME)


def test_a_dead_server_is_reported_and_reactivation_recovers(
    tmp_path: Path, activator: FuseActivator, mounts: Mounts
) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=16 * MiB)
    device = activator.activate(NAME, volume.segment, volume.key)
    run("mkfs.ext4", "-q", "-F", device)
    os.kill(server_pid(activator), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while activator.status(NAME).problem is None and time.monotonic() < deadline:
        time.sleep(0.05)
    status = activator.status(NAME)
    assert not status.active
    assert status.problem == "the FUSE server is not running"

    device = activator.activate(NAME, volume.segment, volume.key)
    assert activator.status(NAME).active
    target = mounts.mount(device)
    (target / "after-crash").write_text("ok")
    mounts.umount(target)
    activator.deactivate(NAME)


def test_conflicting_segment_is_refused(tmp_path: Path, activator: FuseActivator) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=8 * MiB)
    activator.activate(NAME, volume.segment, volume.key)
    other = DataSegment(device=str(volume.image), offset=4096, size=4096, sector_size=4096)
    with pytest.raises(ActivationConflictError, match="already active"):
        activator.activate(NAME, other, volume.key)
    activator.deactivate(NAME)


def test_startup_failure_is_reported_and_leaves_nothing(tmp_path: Path, activator: FuseActivator) -> None:
    volume = Volume(tmp_path, sector_size=4096, size=8 * MiB)
    with pytest.raises(
        ActivationError, match="did not start: error: ValueError: aes-xts-plain64 needs"
    ) as info:
        activator.activate(NAME, volume.segment, b"short key")
    assert "short key" not in str(info.value)
    status = activator.status(NAME)
    assert (status.active, status.device, status.problem) == (False, None, None)
    assert not activator.mountpoint(NAME).exists()


def test_segment_at_an_offset_behind_an_attached_header(tmp_path: Path, activator: FuseActivator) -> None:
    """Header inside the image (data at 16 MiB, as on a partition): writes land there, the header stays."""
    cryptsetup = require_tool("cryptsetup")
    image, key_file = tmp_path / "disk.img", tmp_path / "key"
    key_file.write_bytes(b"attached header")
    with image.open("wb") as handle:
        handle.truncate(24 * MiB)
    run(
        cryptsetup, "luksFormat", "--batch-mode", "--type", "luks2", "--key-file", key_file,
        "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--sector-size", "4096", image,
    )  # fmt: skip
    metadata = json.loads(run(cryptsetup, "luksDump", "--dump-json-metadata", image))
    offset = int(metadata["segments"]["0"]["offset"])
    assert offset == 16 * MiB
    dump = run(cryptsetup, "luksDump", "--dump-volume-key", "--batch-mode", "--key-file", key_file, image)
    key = bytes.fromhex("".join(re.findall(r"\b[0-9a-f]{2}\b", dump.split("MK dump:", 1)[1])))
    header_before = image.read_bytes()[:offset]

    segment = DataSegment(device=str(image), offset=offset, size=None, sector_size=4096)
    device = activator.activate(NAME, segment, key)
    assert activator.status(NAME).size == 8 * MiB
    data = os.urandom(8 * MiB)
    with open(device, "r+b") as block:
        block.write(data)
        block.flush()
        os.fsync(block.fileno())
    activator.deactivate(NAME)

    assert image.read_bytes()[:offset] == header_before
    run(cryptsetup, "open", "--test-passphrase", "--key-file", key_file, image)
    with image.open("rb") as handle:
        stream = PayloadStream(
            handle, offset=offset, size=8 * MiB, sector_size=4096, iv_tweak=0, volume_key=key
        )
        assert stream.read() == data


def test_an_active_volume_is_in_use_for_format(tmp_path: Path, activator: FuseActivator) -> None:
    """The FUSE server holds the image open but not locked: `luks format` over the bytes it serves used to
    succeed and destroy the live volume. It is now refused with cryptsetup's "still in use" (exit 5)."""
    from volumed.storage.activation import fuse_servers_over

    volume = Volume(tmp_path, sector_size=512)
    activator.activate(NAME, volume.segment, volume.key)
    pid = server_pid(activator)
    users = fuse_servers_over(volume.image)
    assert [(u.name, u.pid, u.offset) for u in users] == [(NAME, pid, 0)]
    assert fuse_servers_over(volume.image, 32 * MiB, MiB) == []  # past the segment: not in use
    assert fuse_servers_over(tmp_path / "other.img") == []
    link = tmp_path / "hardlink.img"
    os.link(volume.image, link)  # the same file under another name is the same volume
    assert [u.pid for u in fuse_servers_over(link)] == [pid]

    before = volume.image.read_bytes()
    argv = [sys.executable, "-m", "volumed", "luks", "format", "--batch-mode", "--key-file",
            str(volume.key_file), "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
            str(volume.image)]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 5, result.stderr
    assert f"Cannot format device {volume.image} which is still in use" in result.stderr
    assert f"FUSE server PID {pid}" in result.stderr
    assert volume.image.read_bytes() == before


def test_an_active_volume_is_in_use_for_wipe_and_disk_create(
    tmp_path: Path, activator: FuseActivator
) -> None:
    """`volumed wipe` and `volumed disk create --force` destroyed a volume the FUSE backend was serving."""
    from volumed.storage.gpt import read_partition_table

    disk = tmp_path / "node.img"
    volumed = [sys.executable, "-m", "volumed"]
    run(*volumed, "disk", "create", disk, "--size", "400MiB", "--layout", "system")
    table = read_partition_table(disk)
    ephemeral = table.find("EPHEMERAL")
    assert ephemeral is not None
    ss = table.sector_size
    segment = DataSegment(str(disk), offset=ephemeral.offset(ss), size=ephemeral.size(ss), sector_size=512)
    activator.activate(NAME, segment, bytes(range(64)))
    pid = server_pid(activator)
    before = disk.read_bytes()

    wipe = subprocess.run([*volumed, "wipe", "--yes", str(disk), "--system-labels-to-wipe", "EPHEMERAL"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert wipe.returncode == 5, wipe.stderr
    assert (
        f"partition EPHEMERAL is in use: volume {NAME} is active on it (FUSE server PID {pid})" in wipe.stderr
    )
    create = subprocess.run([*volumed, "disk", "create", str(disk), "--size", "400MiB", "--layout", "system",
                             "--force"], capture_output=True, text=True, check=False)  # fmt: skip
    assert create.returncode != 0
    assert f"{disk} is in use: volume {NAME} is active on it" in create.stderr
    assert disk.read_bytes() == before

    link = tmp_path / "hardlink.img"
    os.link(disk, link)
    by_link = subprocess.run([*volumed, "wipe", "--yes", str(link), "--system-labels-to-wipe", "EPHEMERAL"],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert by_link.returncode == 5, by_link.stderr
    assert disk.read_bytes() == before

    # Another partition of the same image is not in use.
    run(*volumed, "wipe", "--yes", disk, "--system-labels-to-wipe", "STATE")

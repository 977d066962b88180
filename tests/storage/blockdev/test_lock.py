"""Disk locks: one owner per disk, whatever name the disk is given, and a refusal that names the owner."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from volumed.storage.blockdev import (
    DiskBusyError,
    disk_key,
    disk_owner,
    hold_lock_file,
    lock_disk,
    lock_holder,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_a_held_lock_refuses_a_second_owner_and_names_the_first(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * 4096)
    lock = lock_disk(image, owner="volumed run", lock_dir=tmp_path / "locks")
    with pytest.raises(DiskBusyError) as refused:
        lock_disk(image, owner="volumed run", lock_dir=tmp_path / "locks")
    assert str(refused.value) == f"disk {image} is in use by volumed run (pid {os.getpid()})"
    assert refused.value.holder == f"volumed run (pid {os.getpid()})"
    assert disk_owner(image, lock_dir=tmp_path / "locks") == refused.value.holder
    lock.release()
    assert disk_owner(image, lock_dir=tmp_path / "locks") is None
    lock_disk(image, lock_dir=tmp_path / "locks").release()


def test_a_hard_link_is_the_same_disk_and_a_copy_is_not(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * 4096)
    os.link(image, tmp_path / "link.img")
    (tmp_path / "copy.img").write_bytes(image.read_bytes())
    assert disk_key(image) == disk_key(tmp_path / "link.img") != disk_key(tmp_path / "copy.img")


def test_the_lock_ends_with_its_process_even_killed(tmp_path: Path) -> None:
    """flock is the kernel's: a SIGKILLed owner leaves no stale lock (its pid stays in the file, unused)."""
    path = tmp_path / "state.lock"
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, pathlib; from volumed.storage.blockdev import hold_lock_file; "
         "hold_lock_file(pathlib.Path(sys.argv[1]), what='x', owner='volumed run'); "
         "print('held', flush=True); "
         "sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "held\n"
        assert lock_holder(path) == f"volumed run (pid {child.pid})"
        with pytest.raises(DiskBusyError, match=rf"^x is in use by volumed run \(pid {child.pid}\)$"):
            hold_lock_file(path, what="x", owner="me")
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
        assert child.stdin is not None
        child.stdin.close()
    assert lock_holder(path) is None
    hold_lock_file(path, what="x", owner="me").release()


def test_a_loop_device_is_the_file_it_maps(tmp_path: Path) -> None:
    """`--disk /dev/loopN` over an image and `--disk IMAGE` are one disk."""
    from tests._tools import require_root
    from volumed.storage import loop

    require_root()
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * (1 << 20))
    with loop.attached(image) as device:
        assert disk_key(device.path) == disk_key(image)


def test_a_block_device_is_named_by_its_device_number() -> None:
    """Whatever node or link names it. (Partitions map to their whole disk through sysfs; this machine has
    neither partitioned disks nor partition nodes for loop devices to show it.)"""
    from volumed.storage.blockdev import list_block_devices

    disks = [disk for disk in list_block_devices() if disk.backing_file is None]
    assert disks, "this machine has no block device to check with"
    rdev = os.stat(disks[0].dev_path).st_rdev
    assert disk_key(disks[0].dev_path) == f"block-{os.major(rdev)}:{os.minor(rdev)}"


def test_a_lock_directory_others_may_write_to_is_refused(tmp_path: Path) -> None:
    """Else whoever made it first could hold every disk's lock (and stop `volumed run` from starting)."""
    from volumed.storage.blockdev import BlockDeviceError

    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * 4096)
    shared = tmp_path / "locks"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(
        BlockDeviceError, match=r"only it may write to: another user may hold any lock in it$"
    ):
        lock_disk(image, lock_dir=shared)


def test_a_loop_device_over_a_removed_name_is_still_the_file_it_maps(tmp_path: Path) -> None:
    """Review 3: sysfs says ``.../alias.img (deleted)``; the key fell back to ``block-7:N``, so `volumed run`,
    wipe and luks format took the image's bytes through it for another disk."""
    from tests._tools import require_root
    from volumed.storage import loop

    require_root()
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * (1 << 20))
    os.link(image, tmp_path / "alias.img")
    with loop.attached(tmp_path / "alias.img") as device:
        (tmp_path / "alias.img").unlink()
        assert disk_key(device.path) == disk_key(image)


def test_a_loop_device_attached_in_another_mount_namespace_is_the_file_it_maps(tmp_path: Path) -> None:
    """Review 3: attached through a bind mount in another namespace, sysfs shows its backing file as ``/``;
    the key was the root directory's inode."""
    from tests._tools import require_root, require_tool
    from volumed.storage import loop

    require_root()
    unshare, losetup = require_tool("unshare"), require_tool("losetup")
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * (1 << 20))
    inner = tmp_path / "ns"
    inner.mkdir()
    script = (
        f"mount -t tmpfs t {inner} && touch {inner}/d.img && mount --bind {image} {inner}/d.img "
        f"&& {losetup} -f --show {inner}/d.img"
    )
    result = subprocess.run(
        [unshare, "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    device = result.stdout.strip()
    try:
        info = loop.read_loop_device(device)
        assert info is not None
        assert info.backing_file == "/"  # what sysfs tells this namespace
        assert disk_key(device) == disk_key(image)
    finally:
        subprocess.run([losetup, "-d", device], check=True)


HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize(
    "content", [b"99999 volumed run\n", b"1 \x1b[31mvolumed run (pid 1)\x1b[0m\nFAKE LINE: rm -rf /\n", b""]
)
def test_the_holder_named_is_the_process_the_kernel_says_holds_the_lock(
    tmp_path: Path, content: bytes
) -> None:
    """Review 3: the refusal printed the file's text as it was: a stale pid (read between another holder's
    flock and its pid write) or whatever someone else wrote there, escape sequences included."""
    path = tmp_path / "volumed.lock"
    path.write_bytes(content)
    path.chmod(0o600)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(DiskBusyError) as refused:
            hold_lock_file(path, what="it", owner="volumed run")
        assert refused.value.holder == f"another process (pid {holder.pid})"
        assert lock_holder(path) == f"another process (pid {holder.pid})"
    finally:
        holder.communicate("")


def test_a_lock_file_another_user_may_write_is_refused(tmp_path: Path) -> None:
    from volumed.storage.blockdev import BlockDeviceError

    path = tmp_path / "volumed.lock"
    path.write_bytes(b"")
    path.chmod(0o666)
    with pytest.raises(BlockDeviceError, match=r"is not a file of this user that only it may write to"):
        hold_lock_file(path, what="it", owner="volumed run")

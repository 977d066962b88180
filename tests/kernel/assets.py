"""The guest's kernel and initramfs, fetched from Debian's mirrors once per machine and cached.

Run by hand (as root) with ``.venv/bin/python -m tests.kernel.assets``: it prints the kernel, the
initramfs and the module list. The kernel tier's session fixture calls :func:`ensure_assets`; a failure there
fails the tier with the reason (the tier never skips).

What it does, each step only when its result is not in the cache yet (``.cache/kernel/`` in the repository,
git-ignored; ``VOLUMED_KERNEL_CACHE`` overrides it):

1. Pick the kernel package: ``VOLUMED_KERNEL_PACKAGE`` if set, else a kernel already unpacked in the cache,
   else the ``linux-image-6.1.0-NN-amd64`` that Debian's ``linux-image-amd64`` depends on now (``apt-get
   update`` once when the package lists do not know it).
2. ``apt-get download`` it (about 70 MB) and ``dpkg -x`` it (about 400 MB unpacked); ``depmod`` the tree,
   since the .deb ships no modules.dep.
3. Build a gzip'd newc initramfs: busybox-static, the modules :data:`MODULES` need with their dependencies in
   load order (``modprobe --show-depends``), and ``tests/kernel/initramfs/init``. Its file name carries a
   hash of its inputs, so editing the init script or the module list rebuilds it.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_CACHE: Final = REPO_ROOT / ".cache" / "kernel"
INIT_SCRIPT: Final = Path(__file__).resolve().parent / "initramfs" / "init"
BUSYBOX: Final = Path("/bin/busybox")
META_PACKAGE: Final = "linux-image-amd64"

MODULES: Final = (
    # virtio transport, disk, entropy and the 9p shares (host root, work dir)
    "virtio_pci",
    "virtio_blk",
    "virtio-rng",
    "9pnet_virtio",
    "9p",
    # device-mapper and dm-crypt with the ciphers LUKS2 uses; af_alg for cryptsetup's keyslot crypto
    "dm-mod",
    "dm-crypt",
    "ecb",
    "xts",
    "aesni-intel",
    "af_alg",
    "algif_skcipher",
    "algif_hash",
    # adiantum (xchacha12/xchacha20,aes-adiantum-plain64): the template and what it instantiates; the guest
    # has no module autoloading, so each is loaded up front
    "chacha_generic",
    "nhpoly1305",
    "adiantum",
    # filesystems on the decrypted devices
    "ext4",
    "xfs",
    # disks on other buses than virtio-blk, for the Disk facts (transport, wwid, uuid): NVMe, virtio-scsi,
    # SATA (AHCI), the SCSI disk and CD drivers
    "nvme",
    "virtio_scsi",
    "ahci",
    "sd_mod",
    "sr_mod",
)
"""Top-level modules of the guest; their dependencies are added in load order."""

_PACKAGE_NAME: Final = re.compile(r"linux-image-(\d+\.\d+\.\d+-\d+-amd64)")


class AssetsError(Exception):
    """The guest's kernel or initramfs cannot be prepared; the message says which step failed and why."""


@final
@dataclass(frozen=True)
class KernelAssets:
    """What a guest boots: the kernel image, the initramfs, and the kernel release they belong to."""

    release: str
    kernel: Path
    initramfs: Path
    modules: tuple[str, ...]


def cache_dir() -> Path:
    """Where downloads, the unpacked kernel and the initramfs live."""
    override = os.environ.get("VOLUMED_KERNEL_CACHE")
    return Path(override) if override else DEFAULT_CACHE


def ensure_assets(cache: Path | None = None) -> KernelAssets:
    """The kernel and initramfs, downloaded and built first if the cache lacks them (under a file lock, so
    concurrent test processes share one download)."""
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        release = _pick_release(cache)
        tree = _unpacked_kernel(cache, release)
        modules = _module_closure(tree, release)
        initramfs = _initramfs(cache, tree, release, modules)
        kernel = tree / "boot" / f"vmlinuz-{release}"
        if not kernel.is_file():
            raise AssetsError(f"{kernel} is missing from the unpacked kernel package")
        return KernelAssets(release=release, kernel=kernel, initramfs=initramfs, modules=modules)


# -- choosing and fetching the kernel ----------------------------------------------------------------------


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pick_release(cache: Path) -> str:
    wanted = os.environ.get("VOLUMED_KERNEL_PACKAGE")
    if wanted:
        match = _PACKAGE_NAME.fullmatch(wanted)
        if match is None:
            raise AssetsError(f"VOLUMED_KERNEL_PACKAGE={wanted!r} is not a linux-image-6.1.0-NN-amd64 name")
        return match.group(1)
    unpacked = sorted(
        (
            entry.name
            for entry in cache.iterdir()
            if not entry.name.startswith(".") and (entry / ".unpacked").exists()
        ),
        key=_version_key,
    )
    if unpacked:
        return unpacked[-1]
    release = _release_from_apt()
    if release is None:
        _apt_update()
        release = _release_from_apt()
    if release is None:
        raise AssetsError(
            f"apt does not know which kernel {META_PACKAGE} depends on (apt-cache depends {META_PACKAGE}); "
            "check /etc/apt/sources.list and that Debian's mirrors are reachable"
        )
    return release


def _version_key(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", release))


def _release_from_apt() -> str | None:
    try:
        result = subprocess.run(
            ["apt-cache", "depends", META_PACKAGE], capture_output=True, text=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise AssetsError("apt-cache is missing: the kernel tier needs a Debian host") from None
    for line in result.stdout.splitlines():
        match = re.search(r"Depends:\s*" + _PACKAGE_NAME.pattern, line)
        if match:
            return match.group(1)
    return None


def _apt_update() -> None:
    if os.geteuid() != 0:
        raise AssetsError("apt's package lists lack the kernel and updating them needs root")
    result = subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssetsError(f"apt-get update failed: {result.stderr.strip()[-2000:]}")


def _unpacked_kernel(cache: Path, release: str) -> Path:
    tree = cache / release
    if (tree / ".unpacked").exists():
        return tree
    package = f"linux-image-{release}"
    deb = _download(cache, package)
    _log(f"unpacking {deb.name}")
    shutil.rmtree(tree, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{release}-", dir=cache))
    try:
        _run(["dpkg-deb", "-x", str(deb), str(staging)], what=f"dpkg -x {deb.name}")
        _run(["depmod", "-b", str(staging), release], what=f"depmod for {release}")
        (staging / ".unpacked").write_text(f"{deb.name}\n")
        staging.rename(tree)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return tree


def _download(cache: Path, package: str) -> Path:
    existing = sorted(cache.glob(f"{package}_*_amd64.deb"))
    if existing:
        return existing[-1]
    _log(f"downloading {package} with apt-get download")
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    try:
        command = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", package]
        result = subprocess.run(command, cwd=staging, capture_output=True, text=True, check=False)
        if result.returncode != 0 and "Unable to locate" in result.stderr:
            _apt_update()
            result = subprocess.run(command, cwd=staging, capture_output=True, text=True, check=False)
        debs = sorted(staging.glob(f"{package}_*_amd64.deb"))
        if result.returncode != 0 or not debs:
            raise AssetsError(
                f"apt-get download {package} failed (exit {result.returncode}): "
                f"{result.stderr.strip()[-2000:] or result.stdout.strip()[-2000:]}"
            )
        target = cache / debs[-1].name
        debs[-1].rename(target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- the initramfs ------------------------------------------------------------------------------------------


def _module_closure(tree: Path, release: str) -> tuple[str, ...]:
    """Module files (relative to lib/modules/RELEASE) in load order, each once; built-ins left out."""
    base = tree / "lib" / "modules" / release
    ordered: list[str] = []
    for module in MODULES:
        result = subprocess.run(
            ["modprobe", "-d", str(tree), "-S", release, "--show-depends", module],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise AssetsError(f"kernel {release} has no module {module}: {result.stderr.strip()}")
        for line in result.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "insmod":
                relative = str(Path(fields[1]).relative_to(base))
                if relative not in ordered:
                    ordered.append(relative)
    return tuple(ordered)


def _initramfs(cache: Path, tree: Path, release: str, modules: tuple[str, ...]) -> Path:
    if not BUSYBOX.is_file() or not _is_static(BUSYBOX):
        raise AssetsError(
            f"{BUSYBOX} is missing or not statically linked: install the package busybox-static"
        )
    init = INIT_SCRIPT.read_bytes()
    busybox = BUSYBOX.read_bytes()
    digest = hashlib.sha256()
    for part in (release.encode(), init, hashlib.sha256(busybox).digest(), "\n".join(modules).encode()):
        digest.update(hashlib.sha256(part).digest())
    target = cache / f"initramfs-{release}-{digest.hexdigest()[:16]}.cpio.gz"
    if target.exists():
        return target
    _log(f"building {target.name}")
    base = tree / "lib" / "modules" / release
    archive = _Cpio()
    for directory in ("bin", "dev", "lib", "lib/modules", "mnt", "proc", "sys", "tmp", "usr"):
        archive.directory(directory)
    archive.file("bin/busybox", busybox, mode=0o755)
    archive.file("init", init, mode=0o755)
    names = []
    for relative in modules:
        name = Path(relative).name
        archive.file(f"lib/modules/{name}", (base / relative).read_bytes(), mode=0o644)
        names.append(name)
    archive.file("lib/modules/order", ("\n".join(names) + "\n").encode(), mode=0o644)
    staging = target.with_suffix(".tmp")
    with gzip.open(staging, "wb", compresslevel=6) as out:
        out.write(archive.finish())
    staging.rename(target)
    for stale in cache.glob(f"initramfs-{release}-*.cpio.gz"):
        if stale != target:
            stale.unlink()
    return target


def _is_static(path: Path) -> bool:
    """Whether an ELF executable has no program interpreter (PT_INTERP), i.e. needs no dynamic loader."""
    data = path.read_bytes()[:65536]
    if data[:5] != b"\x7fELF\x02":
        return False
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        (kind,) = struct.unpack_from("<I", data, phoff + index * phentsize)
        if kind == 3:  # PT_INTERP
            return False
    return True


@final
class _Cpio:
    """A newc ("070701") cpio archive in memory, as the kernel unpacks an initramfs."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._inode = 1

    def directory(self, name: str) -> None:
        self._entry(name, b"", mode=0o040755)

    def file(self, name: str, data: bytes, *, mode: int) -> None:
        self._entry(name, data, mode=0o100000 | mode)

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", b"", mode=0)
        return self._out.getvalue()

    def _entry(self, name: str, data: bytes, *, mode: int) -> None:
        encoded = name.encode() + b"\0"
        fields = (self._inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        self._inode += 1
        self._out.write(header + encoded)
        self._pad()
        self._out.write(data)
        self._pad()

    def _pad(self) -> None:
        self._out.write(b"\0" * (-self._out.tell() % 4))


def _run(command: list[str], *, what: str) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise AssetsError(f"{what}: {command[0]} is missing (Debian packages dpkg and kmod)") from None
    if result.returncode != 0:
        raise AssetsError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")


def _log(message: str) -> None:
    print(f"kernel assets: {message}", file=sys.stderr, flush=True)


def main() -> int:
    """Prepare the assets and print where they are."""
    try:
        assets = ensure_assets()
    except AssetsError as exc:
        print(f"kernel assets: {exc}", file=sys.stderr)
        return 1
    print(f"release    {assets.release}")
    print(f"kernel     {assets.kernel}")
    print(f"initramfs  {assets.initramfs}")
    print(f"modules    {' '.join(Path(m).name for m in assets.modules)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

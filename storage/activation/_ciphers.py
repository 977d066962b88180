"""Which segment ciphers each activation backend can serve, asked before anything is formatted or started.

dm-crypt takes cryptsetup's cipher strings as the header writes them (it reads
``xchacha12,aes-adiantum-plain64`` as the kernel template ``adiantum(xchacha12,aes)``); the FUSE server
decrypts in userspace and has AES-XTS only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._model import BackendName

DM_KEY_SIZES: Final = {
    "aes-xts-plain64": (32, 64),
    "xchacha12,aes-adiantum-plain64": (32,),
    "xchacha20,aes-adiantum-plain64": (32,),
}
"""Segment ciphers the dm backend loads, with their key sizes in bytes."""

FUSE_CIPHERS: Final = ("aes-xts-plain64",)
"""Segment ciphers the FUSE server decrypts (storage/luks2/xts.py)."""


def cipher_problem(backend: BackendName, cipher: str) -> str | None:
    """Why ``backend`` cannot activate a segment encrypted with ``cipher``, or None.

    A controller can ask this before it formats a volume, so that a cipher the backend cannot serve leaves
    the disk untouched instead of leaving a header that opens only elsewhere.
    """
    if backend == "dm":
        return None if cipher in DM_KEY_SIZES else f"unsupported cipher {cipher!r} for dm-crypt activation"
    if cipher in FUSE_CIPHERS:
        return None
    if "adiantum" in cipher:
        return f"{cipher}: the fuse backend has no userspace adiantum data path; use --backend dm"
    return f"the fuse backend does not decrypt {cipher!r}"

"""PCR selections and values in the SHA-256 bank: validation and the byte layouts the TPM hashes (pure)."""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING

from ._errors import PCRValueError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

PCR_COUNT = 24
"""PCRs 0..23, the set every PC-client TPM implements (and Talos' config accepts)."""

PCR_BANK = "sha256"
"""The only bank sealed keys use, spelled as the token's ``alg`` field."""

TPM_ALG_SHA256 = 0x000B
_SIZE_OF_SELECT = PCR_COUNT // 8
_DIGEST_SIZE = hashlib.sha256().digest_size


def normalize_pcrs(
    pcrs: Iterable[int], *, what: str = "PCR list", allow_empty: bool = False
) -> tuple[int, ...]:
    """Return ``pcrs`` sorted, after checking each is an int in 0..23 and none repeats.

    Raises:
        ValueError: empty list (unless ``allow_empty``), a non-int, an index out of range, or a duplicate; the
            message names it.
    """
    seen: list[int] = []
    for pcr in pcrs:
        if isinstance(pcr, bool) or not isinstance(pcr, int):
            raise ValueError(f"{what}: PCR {pcr!r} is not an integer")
        if not 0 <= pcr < PCR_COUNT:
            raise ValueError(f"{what}: PCR {pcr} is out of range 0..{PCR_COUNT - 1}")
        if pcr in seen:
            raise ValueError(f"{what}: PCR {pcr} is listed twice")
        seen.append(pcr)
    if not seen and not allow_empty:
        raise ValueError(f"{what}: at least one PCR is needed")
    return tuple(sorted(seen))


def pcr_selection_bytes(pcrs: Iterable[int]) -> bytes:
    """``TPML_PCR_SELECTION`` with one SHA-256 selection of ``pcrs`` (3-byte bitmap), as the TPM marshals
    it."""
    bitmap = bytearray(_SIZE_OF_SELECT)
    for pcr in pcrs:
        bitmap[pcr >> 3] |= 1 << (pcr & 7)
    return struct.pack(">IHB", 1, TPM_ALG_SHA256, _SIZE_OF_SELECT) + bytes(bitmap)


def pcr_composite_digest(values: Mapping[int, bytes]) -> bytes:
    """SHA-256 over the PCR values concatenated in ascending PCR order: the ``pcrDigest`` of
    TPM2_PolicyPCR."""
    hasher = hashlib.sha256()
    for pcr in sorted(values):
        hasher.update(values[pcr])
    return hasher.digest()


def check_pcr_values(values: Mapping[int, bytes]) -> None:
    """Refuse PCRs nothing was measured into: all zeros (never extended) or all 0xFF (a reset-only PCR).

    Raises:
        PCRValueError: naming the first such PCR.
    """
    for pcr in sorted(values):
        value = values[pcr]
        if len(value) != _DIGEST_SIZE:
            raise PCRValueError(
                f"PCR {pcr} ({PCR_BANK}) has a {len(value)}-byte value, expected {_DIGEST_SIZE}"
            )
        if value == bytes(_DIGEST_SIZE):
            raise PCRValueError(
                f"PCR {pcr} ({PCR_BANK}) is populated with all zeroes: refusing to seal to it"
            )
        if value == b"\xff" * _DIGEST_SIZE:
            raise PCRValueError(f"PCR {pcr} ({PCR_BANK}) is populated with all 0xFF: refusing to seal to it")

"""cryptsetup 2.6's metadata rules (lib/luks2/luks2_json_metadata.c): a header that breaks one is rejected."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from ._errors import InvalidHeaderError
from ._metadata import Keyslot, Metadata, Pbkdf2Kdf

if TYPE_CHECKING:
    from ._metadata import Kdf

MAX_KEYSLOTS = 32
MAX_TOKENS = 32
MAX_SEGMENTS = 32
MAX_DIGESTS = 8
AF_STRIPES = 4000
MAX_KEYSLOTS_SIZE = 128 * 1024 * 1024
SALT_SIZE = 32
RESERVED_TOKEN_PREFIX = "luks2-"

# Bounds of the parameters that reach a KDF, an allocation or a loop. A header outside them is invalid, like
# one that breaks a JSON rule: checked for each copy on reading, so a hostile copy is a bad copy, and neither
# a KDF nor an allocation ever sees such a value (they panicked, or raised errors no caller expected).
UINT32_MAX = 2**32 - 1
#: cryptsetup's pbkdf2 limits (crypt_pbkdf_get_limits): 1000 (NIST SP 800-132) .. UINT32_MAX; the same for
#: digests, whose iterations cryptsetup never sets below 1000 either.
PBKDF2_ITERATIONS = (1000, UINT32_MAX)
#: argon2 time: libargon2's minimum (cryptsetup writes at least 4, reads any) .. UINT32_MAX.
ARGON2_TIME = (1, UINT32_MAX)
#: argon2 memory in KiB: cryptsetup's limits, 32 KiB .. 4 GiB.
ARGON2_MEMORY_KIB = (32, 4 * 1024 * 1024)
#: argon2 lanes: libargon2's limits. cryptsetup writes at most 4; other writers may use more. The threads
#: run for them are capped by the CPUs available (``_argon2``), so lanes cost memory, not threads.
ARGON2_CPUS = (1, 2**24 - 1)
#: libargon2 needs 8 KiB of memory per lane.
ARGON2_KIB_PER_LANE = 8
#: Key sizes in bytes (volume key and key slot area key): far above any dm-crypt cipher's key
#: (aes-xts-plain64 takes 32 or 64), far below what an allocation or a KDF output could choke on.
KEY_SIZE = (1, 512)
#: A digest value holds one hash output at most (cryptsetup's buffer is 64 bytes).
DIGEST_SIZE = (1, 64)

#: Requirements this library implements; any other mandatory one makes the header read-only.
KNOWN_REQUIREMENTS: frozenset[str] = frozenset()


def _fail(what: str) -> InvalidHeaderError:
    return InvalidHeaderError(f"LUKS2 metadata: {what}")


def validate(meta: Metadata, *, hdr_size: int) -> None:
    """Raise InvalidHeaderError naming the first rule ``meta`` breaks for a header of ``hdr_size`` bytes."""
    cfg = meta.config
    if cfg.json_size != hdr_size - 4096:
        raise _fail(f"config.json_size {cfg.json_size} does not match the header size {hdr_size}")
    if cfg.keyslots_size % 4096 or cfg.keyslots_size > MAX_KEYSLOTS_SIZE:
        raise _fail(f"config.keyslots_size {cfg.keyslots_size} is not 4 KiB aligned or exceeds 128 MiB")
    for name, ids, limit in (
        ("keyslots", meta.keyslots, MAX_KEYSLOTS),
        ("tokens", meta.tokens, MAX_TOKENS),
        ("segments", meta.segments, MAX_SEGMENTS),
    ):
        for i in ids:
            if i >= limit:
                raise _fail(f"{name} id {i} is out of range 0..{limit - 1}")
    if len(meta.digests) > MAX_DIGESTS:
        raise _fail(f"{len(meta.digests)} digests, at most {MAX_DIGESTS} allowed")
    _validate_keyslots(meta, hdr_size)
    _validate_segments(meta, hdr_size)
    _validate_digests(meta)
    _validate_tokens(meta)


def _validate_keyslots(meta: Metadata, hdr_size: int) -> None:
    area_start = 2 * hdr_size
    area_end = area_start + meta.config.keyslots_size
    spans: list[tuple[int, int, int]] = []
    for i, slot in meta.keyslots.items():
        if isinstance(slot, Keyslot):
            _validate_kdf(f"keyslots.{i}", slot.kdf)
            _in_range(f"keyslots.{i}: key_size", slot.key_size, KEY_SIZE)
            _in_range(f"keyslots.{i}: area.key_size", slot.area_key_size, KEY_SIZE)
            # cryptsetup always splits into 4000 stripes, whatever af.stripes says
            if slot.area_size < slot.key_size * AF_STRIPES:
                raise _fail(f"keyslots.{i}: area too small for the key material")
            owners = [d for d in meta.digests.values() if i in d.keyslots]
            if len(owners) != 1:
                raise _fail(f"keyslots.{i} must be listed by exactly one digest (found {len(owners)})")
        if slot.area_size == 0:
            continue
        start, end = slot.area_offset, slot.area_offset + slot.area_size
        if start < area_start or end > area_end:
            raise _fail(f"keyslots.{i}: area [{start}, {end}) lies outside the key slot area")
        spans.append((start, end, i))
    spans.sort()
    for (_, end_a, a), (start_b, _, b) in itertools.pairwise(spans):
        if start_b < end_a:
            raise _fail(f"keyslots.{a} and keyslots.{b}: areas overlap")


def _in_range(what: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise _fail(f"{what} {value} out of range {low}..{high}")


def _validate_kdf(where: str, kdf: Kdf) -> None:
    """The KDF parameters of one key slot, within the bounds above (before any KDF may run)."""
    if len(kdf.salt) != SALT_SIZE:
        raise _fail(f"{where}: kdf salt must be {SALT_SIZE} bytes")
    if isinstance(kdf, Pbkdf2Kdf):
        _in_range(f"{where}: pbkdf2 iterations", kdf.iterations, PBKDF2_ITERATIONS)
        return
    _in_range(f"{where}: argon2 time", kdf.time, ARGON2_TIME)
    low, high = ARGON2_MEMORY_KIB
    if not low <= kdf.memory <= high:
        raise _fail(f"{where}: argon2 memory {kdf.memory} KiB out of range {low}..{high}")
    _in_range(f"{where}: argon2 cpus", kdf.cpus, ARGON2_CPUS)
    if kdf.memory < ARGON2_KIB_PER_LANE * kdf.cpus:
        raise _fail(
            f"{where}: argon2 memory {kdf.memory} KiB is less than {ARGON2_KIB_PER_LANE} KiB per lane"
            f" ({kdf.cpus} cpus)"
        )


def _validate_segments(meta: Metadata, hdr_size: int) -> None:
    ids = [i for i, s in meta.segments.items() if not s.is_backup]
    data_start = 2 * hdr_size + meta.config.keyslots_size
    for i, seg in meta.segments.items():
        if seg.is_backup and seg.type == "crypt" and seg.sector_size not in (512, 1024, 2048, 4096):
            raise _fail(f"segments.{i}: invalid sector_size {seg.sector_size}")
    for n, i in enumerate(sorted(ids)):
        seg = meta.segments[i]
        if seg.offset % 512:
            raise _fail(f"segments.{i}: offset {seg.offset} is not 512-byte aligned")
        if seg.type == "crypt":
            if seg.sector_size not in (512, 1024, 2048, 4096):
                raise _fail(f"segments.{i}: invalid sector_size {seg.sector_size}")
            if seg.size is not None and seg.size % seg.sector_size:
                raise _fail(f"segments.{i}: size is not a multiple of sector_size")
            if not any(i in d.segments for d in meta.digests.values()):
                raise _fail(f"segments.{i}: no digest covers this crypt segment")
        if seg.size is None and n != len(ids) - 1:
            raise _fail(f"segments.{i}: only the last segment may be dynamic")
        if seg.offset and seg.offset < data_start:
            raise _fail(f"segments.{i}: offset {seg.offset} overlaps the metadata and key slot areas")


def _validate_digests(meta: Metadata) -> None:
    for i, digest in meta.digests.items():
        _in_range(f"digests.{i}: iterations", digest.iterations, PBKDF2_ITERATIONS)
        low, high = DIGEST_SIZE
        if not low <= len(digest.digest) <= high:
            raise _fail(f"digests.{i}: digest must be {low}..{high} bytes, not {len(digest.digest)}")
        for k in digest.keyslots:
            if k not in meta.keyslots:
                raise _fail(f"digests.{i}: lists missing keyslot {k}")
        for s in digest.segments:
            if s not in meta.segments:
                raise _fail(f"digests.{i}: lists missing segment {s}")


def _validate_tokens(meta: Metadata) -> None:
    for i, token in meta.tokens.items():
        for k in token.keyslots:
            if k not in meta.keyslots:
                raise _fail(f"tokens.{i}: lists missing keyslot {k}")


def unknown_requirements(meta: Metadata) -> tuple[str, ...]:
    """The mandatory requirements this library does not implement (the header is then read-only)."""
    return tuple(r for r in meta.config.mandatory_requirements if r not in KNOWN_REQUIREMENTS)

"""Key slot mechanics: open one slot, build a new one, place its area, order slots for unlocking."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._af import af_merge, af_split
from ._area_cipher import UNIT, check_cipher, decrypt_area, encrypt_area
from ._digest import SUPPORTED_HASHES, compute_digest, digest_matches, hash_algorithm, hashlib_name
from ._errors import InvalidHeaderError, InvalidMetadataError, KeyslotUnusableError, NoSpaceError
from ._kdf import KdfSettings, derive_key, kdf_failures, kdf_problem, resolve_kdf
from ._metadata import Argon2Kdf, Digest, Keyslot, Metadata, Pbkdf2Kdf
from ._validate import AF_STRIPES, MAX_KEYSLOTS, SALT_SIZE

if TYPE_CHECKING:
    from ._device import Region

PRIORITY_IGNORE = 0
PRIORITY_NORMAL = 1
PRIORITY_PREFER = 2


def material_length(key_size: int, stripes: int = AF_STRIPES) -> int:
    """Bytes of AF material on disk for a key: key_size * stripes rounded up to 512."""
    return -(-key_size * stripes // UNIT) * UNIT


def area_length(key_size: int) -> int:
    """The area size cryptsetup allocates: key_size * 4000 rounded up to 4 KiB (258048 for 64-byte keys)."""
    return -(-key_size * AF_STRIPES // 4096) * 4096


def slot_problem(slot: Keyslot) -> str | None:
    """Why this library cannot use ``slot`` here (checked before any KDF runs), or None.

    A header may be valid and still name what we do not implement (a pbkdf2 or AF hash, an area cipher)
    or a KDF this machine cannot afford (argon2 memory above its RAM): that slot is unusable, the others
    are not. cryptsetup would try such a slot; we refuse it with its reason instead.
    """
    problem = kdf_problem(slot.kdf, slot.area_key_size)
    if problem is not None:
        return problem
    try:
        hashlib.new(hashlib_name(slot.af_hash)).digest()  # shake_* hashes have no fixed digest size
    except (ValueError, TypeError):
        return (
            f"AF hash {slot.af_hash!r} is not supported by volumed"
            f" (supported: {SUPPORTED_HASHES} and other hashes Python's hashlib knows by that name)"
        )
    try:
        check_cipher(slot.area_encryption, slot.area_key_size)
    except InvalidMetadataError as exc:
        return f"area: {exc}"
    return None


def digest_problem(digest: Digest) -> str | None:
    """Why this library cannot verify keys against ``digest``, or None."""
    try:
        hash_algorithm(digest.hash)
    except ValueError:
        return f"digest hash {digest.hash!r} is not supported by volumed (supported: {SUPPORTED_HASHES})"
    return None


def unusable_reason(slot: Keyslot, digest: Digest) -> str | None:
    """Why a slot and its digest cannot unlock here (`slot_problem`, then `digest_problem`), or None."""
    problem = slot_problem(slot)
    if problem is not None:
        return f"key slot unusable: {problem}"
    problem = digest_problem(digest)
    if problem is not None:
        return f"key slots of this digest are unusable: {problem}"
    return None


def open_keyslot(region: Region, slot: Keyslot, passphrase: bytes) -> bytes:
    """Derive, decrypt and AF-merge the candidate volume key of ``slot`` (not yet verified).

    Raises:
        KeyslotNotActiveError: the slot is unusable here (`slot_problem`); no KDF ran.
    """
    problem = slot_problem(slot)
    if problem is not None:
        raise KeyslotUnusableError(f"{region.name}: key slot unusable: {problem}")
    key = derive_key(slot.kdf, passphrase, slot.area_key_size)
    length = material_length(slot.key_size)  # 4000 stripes always, as cryptsetup reads them
    raw = region.read(slot.area_offset, length)
    if len(raw) < length:
        raise InvalidHeaderError(f"{region.name}: key slot area at {slot.area_offset} is truncated")
    material = decrypt_area(raw, key, slot.area_encryption)
    return af_merge(material, slot.key_size, AF_STRIPES, slot.af_hash)


def digest_of_slot(meta: Metadata, slot_id: int) -> tuple[int, Digest]:
    for i, digest in meta.digests.items():
        if slot_id in digest.keyslots:
            return i, digest
    raise InvalidHeaderError(f"keyslot {slot_id} is not listed by any digest")


def key_matches(digest: Digest, volume_key: bytes) -> bool:
    """Whether ``volume_key`` is the key ``digest`` verifies.

    Raises:
        KeyslotNotActiveError: the digest uses a hash this library does not implement.
    """
    problem = digest_problem(digest)
    if problem is not None:
        raise KeyslotUnusableError(f"key slots of this digest are unusable: {problem}")
    with kdf_failures("digest"):
        return digest_matches(
            volume_key,
            hash_name=digest.hash,
            salt=digest.salt,
            iterations=digest.iterations,
            expected=digest.digest,
        )


def _kdf_cost(slot: Keyslot) -> float:
    kdf = slot.kdf
    if isinstance(kdf, Pbkdf2Kdf):
        return kdf.iterations / 1_000_000
    assert isinstance(kdf, Argon2Kdf)
    return kdf.time * kdf.memory / max(kdf.cpus, 1) / 100_000


def unlock_order(meta: Metadata) -> list[int]:
    """Slots to try without an explicit slot: preferred first, then normal; never priority 0.

    Slots this library cannot use (`unusable_reason`) are left out (`unusable_slots` says why). Within one
    priority the order is cheaper KDF first and slots that a token (TPM, KMS, ...) serves last:
    a passphrase is unlikely to belong to a token's slot, and a wrong guess costs a whole KDF run.
    """
    return _sort_slots(meta)[0]


def unusable_slots(meta: Metadata) -> dict[int, str]:
    """The slots `unlock_order` would try but leaves out as unusable here, each with its reason."""
    return _sort_slots(meta)[1]


def _sort_slots(meta: Metadata) -> tuple[list[int], dict[int, str]]:
    segment_ids = {i for i, s in meta.segments.items() if not s.is_backup}
    token_slots = {k for t in meta.tokens.values() for k in t.keyslots}
    candidates: list[tuple[int, int, float, int]] = []
    unusable: dict[int, str] = {}
    for i, slot in meta.keyslots.items():
        if not isinstance(slot, Keyslot):
            continue
        priority = PRIORITY_NORMAL if slot.priority is None else slot.priority
        if priority not in (PRIORITY_NORMAL, PRIORITY_PREFER):
            continue
        try:
            _, digest = digest_of_slot(meta, i)
        except InvalidHeaderError:
            continue
        if not segment_ids & set(digest.segments):
            continue
        reason = unusable_reason(slot, digest)
        if reason is not None:
            unusable[i] = reason  # no KDF run for it
            continue
        candidates.append((-priority, int(i in token_slots), _kdf_cost(slot), i))
    return [c[-1] for c in sorted(candidates)], unusable


def free_slot_id(meta: Metadata) -> int:
    for i in range(MAX_KEYSLOTS):
        if i not in meta.keyslots:
            return i
    raise NoSpaceError("all 32 key slots are in use")


def allocate_area(meta: Metadata, hdr_size: int, length: int, *, ignore: int | None = None) -> int:
    """The first gap of ``length`` bytes at or after 2*hdr_size that ends within the key slot area."""
    start = 2 * hdr_size
    end = start + meta.config.keyslots_size
    used = sorted(
        (s.area_offset, s.area_offset + s.area_size)
        for i, s in meta.keyslots.items()
        if s.area_size and i != ignore
    )
    candidate = start
    for used_start, used_end in used:
        if candidate + length <= used_start:
            break
        candidate = max(candidate, used_end)
    if candidate + length > end:
        raise NoSpaceError(
            f"no gap of {length} bytes left in the key slot area ({meta.config.keyslots_size} bytes)"
        )
    return candidate


@dataclass(frozen=True)
class NewKeyslot:
    """A key slot ready to commit: its JSON object and the encrypted area bytes to write first."""

    keyslot: Keyslot
    area: bytes = field(repr=False)


def build_keyslot(
    volume_key: bytes,
    passphrase: bytes,
    *,
    settings: KdfSettings,
    area_offset: int,
    cipher: str,
    priority: int | None = None,
) -> NewKeyslot:
    """Derive a fresh slot key, AF-split ``volume_key`` and encrypt it for ``area_offset``."""
    key_size = len(volume_key)
    kdf = resolve_kdf(settings, salt=os.urandom(SALT_SIZE), key_size=key_size)
    slot_key = derive_key(kdf, passphrase, key_size)
    material = af_split(volume_key, AF_STRIPES, settings.hash)
    material += bytes(material_length(key_size) - len(material))
    area = encrypt_area(material, slot_key, cipher)
    keyslot = Keyslot(
        key_size=key_size,
        area_offset=area_offset,
        area_size=area_length(key_size),
        area_encryption=cipher,
        area_key_size=key_size,
        kdf=kdf,
        af_hash=settings.hash,
        priority=priority,
    )
    return NewKeyslot(keyslot=keyslot, area=area)


def new_digest(
    volume_key: bytes, *, iterations: int, keyslots: tuple[int, ...], segments: tuple[int, ...]
) -> Digest:
    salt = os.urandom(SALT_SIZE)
    value = compute_digest(volume_key, hash_name="sha256", salt=salt, iterations=iterations, length=32)
    return Digest(
        keyslots=keyslots, segments=segments, hash="sha256", iterations=iterations, salt=salt, digest=value
    )

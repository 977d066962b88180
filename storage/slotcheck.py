"""Key-slot fingerprints: verify a configured passphrase against a slot without running the slot's KDF.

Talos checks every configured key at boot with a test unlock: one argon2 run (~1-2 s at defaults) per slot.
Once a volume is open we hold its volume key, so we can check passphrases against fingerprints keyed by it:

    fingerprint = HMAC-SHA256(volume_key,
                              "volumed-slot-check/v1" || be32(slot) || SHA-256(slot JSON) || passphrase)

kept in one LUKS2 token of type ``volumed-slot-check``. Why this is safe:

* The HMAC key is the volume key. Whoever can compute or test fingerprints already holds the volume key and so
  the data; to anyone else the token is 32 random-looking bytes per slot and gives no cheaper way to test
  passphrase guesses than the slot's own KDF.
* The slot's JSON (KDF salt, parameters, area) is inside the MAC: when a slot is re-enrolled by anything
  (cryptsetup luksChangeKey, luksKillSlot + luksAddKey) its salt changes, the fingerprint no longer matches,
  and the caller falls back to a real test unlock (one KDF run) and refreshes the fingerprint.
* A match proves the passphrase is the one this slot was enrolled with *by us*, with this volume key. It does
  not prove the slot's area is intact (bit rot): the slot that opened the volume this boot is proven by the
  KDF itself, and a damaged area of another slot shows up when that slot is used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

SLOT_CHECK_TOKEN_TYPE: Final = "volumed-slot-check"
_DOMAIN: Final = b"volumed-slot-check/v1"
_VERSION: Final = 1


class SlotCheckError(ValueError):
    """A ``volumed-slot-check`` token is malformed (not: a fingerprint that does not match)."""


def slot_fingerprint(volume_key: bytes, slot: int, slot_json: Mapping[str, Any], passphrase: bytes) -> bytes:
    """The fingerprint binding ``passphrase`` to key slot ``slot`` as it is enrolled now."""
    if not 0 <= slot < 32:
        raise ValueError(f"key slot {slot} is out of range 0..31")
    slot_digest = hashlib.sha256(
        json.dumps(slot_json, separators=(",", ":"), sort_keys=True).encode()
    ).digest()
    message = _DOMAIN + slot.to_bytes(4, "big") + slot_digest + passphrase
    return hmac.new(volume_key, message, hashlib.sha256).digest()


def fingerprint_matches(expected: bytes | None, actual: bytes) -> bool:
    """Constant-time comparison; a missing fingerprint never matches."""
    return expected is not None and hmac.compare_digest(expected, actual)


def make_slot_check_token(fingerprints: Mapping[int, bytes]) -> dict[str, Any]:
    """The token JSON holding ``fingerprints`` by slot (``keyslots`` stays empty: the token opens nothing)."""
    return {
        "type": SLOT_CHECK_TOKEN_TYPE,
        "keyslots": [],
        "version": _VERSION,
        "fingerprints": {
            str(slot): base64.b64encode(fp).decode() for slot, fp in sorted(fingerprints.items())
        },
    }


def parse_slot_check_token(body: Mapping[str, Any]) -> dict[int, bytes]:
    """Fingerprints by slot from a token's JSON.

    Raises:
        SlotCheckError: not a slot-check token, an unknown version, or malformed entries.
    """
    if body.get("type") != SLOT_CHECK_TOKEN_TYPE:
        raise SlotCheckError(f"token type is {body.get('type')!r}, not {SLOT_CHECK_TOKEN_TYPE!r}")
    if body.get("version") != _VERSION:
        raise SlotCheckError(f"unsupported slot-check token version {body.get('version')!r}")
    entries = body.get("fingerprints")
    if not isinstance(entries, dict):
        raise SlotCheckError("slot-check token has no 'fingerprints' object")
    result: dict[int, bytes] = {}
    for key, value in entries.items():
        if not (isinstance(key, str) and key.isdigit() and 0 <= int(key) < 32):
            raise SlotCheckError(f"slot-check token: {key!r} is not a key slot number")
        try:
            raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != hashlib.sha256().digest_size:
            raise SlotCheckError(
                f"slot-check token: fingerprint of slot {key} is not 32 base64-encoded bytes"
            )
        result[int(key)] = raw
    return result

"""The LUKS2 error hierarchy: one base class, narrow subclasses by meaning. No message ever holds a secret."""

from __future__ import annotations


class Luks2Error(Exception):
    """Base of every error this package raises on purpose.

    Messages name what is wrong and where (offset, slot, token id), never a passphrase, key or salt.
    """


class InvalidHeaderError(Luks2Error):
    """Neither header copy is a valid LUKS2 header (magic, checksum, sizes or JSON rules).

    Not raised for a single bad copy when the other one is good: that copy is repaired instead.
    """


class NotLuks2Error(InvalidHeaderError):
    """The device holds no LUKS2 header at all (no magic at any known offset)."""


class AmbiguousSignaturesError(InvalidHeaderError):
    """A header copy needs repair but the device also carries another signature (cryptsetup: "Device
    contains ambiguous signatures, cannot auto-recover LUKS2"); nothing was written."""


class InvalidMetadataError(Luks2Error):
    """A metadata change (token, slot, parameter) breaks cryptsetup's rules; nothing was written."""


class NoKeyError(Luks2Error):
    """No key slot opened with the given passphrase or key (wrong passphrase, slot disabled, slot empty).

    Deliberately one opaque error for every unlock failure, like cryptography's ``InvalidToken``.
    """


class KeyslotNotActiveError(NoKeyError):
    """The key slot named for unlocking is empty or unusable ("No usable keyslot is available")."""


class KeyslotUnusableError(KeyslotNotActiveError):
    """The slot named, or every slot an unlock without a slot could try, uses what this library does not
    implement (a hash, a cipher) or cannot afford: the message names each slot and why. No KDF ran, so it
    says nothing about the passphrase, unlike the opaque `NoKeyError`."""


class UnsupportedCipherError(Luks2Error, ValueError):
    """The data segment is encrypted with a cipher this library does not implement, and the operation needs
    it (reading or writing the payload); the key slots may still be usable. A ValueError too, as the payload
    cipher's own refusal was before."""


class ReadOnlyError(Luks2Error):
    """The header carries requirements this library does not implement, or the volume was opened read-only."""


class ConcurrentUpdateError(Luks2Error):
    """The header changed on disk between our read and our write (another writer); nothing was written."""


class BusyError(Luks2Error):
    """Another process holds the header lock and did not release it in time."""


class NoSpaceError(Luks2Error):
    """No free key slot number or no gap in the key slot area large enough for a new slot."""


class DeviceError(Luks2Error):
    """The device or header file does not exist, cannot be opened, or is too small for the operation."""

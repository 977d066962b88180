"""Boot phases: PCR 11 extended with a phase word, as systemd-pcrphase does and Talos does at each phase.

A signed UKI carries signatures only for the PCR 11 values of the phases it was signed for (Talos signs
``enter-initrd:leave-initrd:enter-machined``), so extending PCR 11 with the next word (``start-the-world``)
closes the window in which keys under the signed PCR 11 policy unseal, until the next boot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

from ._connection import TPMConnection
from ._policy import PCRPolicyStep
from ._uki import UKI_PCR, find_signature, load_pcr_public_key, load_pcr_signatures

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ._uki import PCRSignature, PCRSigningKey, UKIFiles

ENTER_INITRD: Final = "enter-initrd"
LEAVE_INITRD: Final = "leave-initrd"
ENTER_MACHINED: Final = "enter-machined"
"""Talos' phase before the volume controllers run; the last phase its UKI signatures cover."""
START_THE_WORLD: Final = "start-the-world"
"""Talos' phase before services start; after it, keys under the signed PCR 11 policy no longer unseal."""


def boot_phase_digest(word: str) -> bytes:
    """SHA-256 of the phase word's bytes (no terminating NUL): what is extended into PCR 11's SHA-256 bank.

    Raises:
        ValueError: an empty word, or one that is not printable ASCII without ``:`` (systemd-measure's phase
            path separator), so it could never match a signed phase.
    """
    if not word or not word.isascii() or not word.isprintable() or ":" in word or " " in word:
        raise ValueError(f"boot phase {word!r} is not a word of printable ASCII without ':' or spaces")
    return hashlib.sha256(word.encode("ascii")).digest()


def measure_boot_phase(word: str, *, tcti: str) -> None:
    """Extend PCR 11 (SHA-256 bank only, as Talos does) with the SHA-256 of ``word`` on the TPM at ``tcti``.

    Blocking (one TPM command): call it from a worker thread.

    Raises:
        ValueError: see :func:`boot_phase_digest`.
        TPMUnavailableError: no TPM at ``tcti``.
        TPMCommandError: the TPM refused the extend.
    """
    digest = boot_phase_digest(word)
    with TPMConnection(tcti) as tpm:
        tpm.pcr_extend(UKI_PCR, digest)


def pcr_after_phase(value: bytes, word: str) -> bytes:
    """The SHA-256 PCR value after extending ``value`` with the phase ``word`` (pure)."""
    return hashlib.sha256(value + boot_phase_digest(word)).digest()


def pcr11_is_signed(
    value: bytes, key: PCRSigningKey, signatures: tuple[PCRSignature, ...], *, path: Path
) -> bool:
    """Whether the UKI's signatures hold one for the PolicyPCR digest of PCR 11 == ``value`` (pure).

    Raises:
        UKIFileError: the matching signature was made with another key than ``key``.
    """
    digest = PCRPolicyStep((UKI_PCR,)).extend(bytes(32), {UKI_PCR: value})
    return find_signature(signatures, digest, key, path=path) is not None


@final
@dataclass(frozen=True, slots=True)
class SignedPhaseCheck:
    """Where PCR 11 stands for keys under the signed policy.

    Attributes:
        open: PCR 11 holds a value the UKI signed: such keys seal and unseal now.
        extended: this check extended PCR 11 with the phase word to get there.
        pcr11: PCR 11's value after the check.
        reason: why not open (empty when open).
    """

    open: bool
    extended: bool
    pcr11: bytes
    reason: str = ""


def enter_signed_phase(
    tcti: str,
    files: UKIFiles,
    *,
    word: str = ENTER_MACHINED,
    extend: bool = True,
    may_extend: Callable[[], bool] = lambda: True,
) -> SignedPhaseCheck:
    """Open the window in which keys under the signed PCR 11 policy work, if this boot allows it.

    PCR 11 is extended with ``word`` only when its value now is not signed but its value after ``word`` is:
    a second run in the same boot, or an image whose init extended the word itself, finds the window open
    and leaves PCR 11 alone; a boot past the window (``start-the-world`` extended) or without a signed UKI is
    never extended. ``may_extend`` is asked right before the extend (a caller that gave up on a slow TPM says
    no). Blocking (file reads, TPM commands): call it from a worker thread.

    Raises:
        UKIFileError: a UKI file is missing (no signed UKI was booted), unreadable or malformed.
        TPMUnavailableError, TPMCommandError: the TPM could not be used.
    """
    key = load_pcr_public_key(files.public_key)
    signatures = load_pcr_signatures(files.signature)
    path = files.signature
    with TPMConnection(tcti) as tpm:
        value = tpm.read_pcrs((UKI_PCR,))[UKI_PCR]
        if value == bytes(len(value)):
            return SignedPhaseCheck(False, False, value, "no UKI was measured: PCR 11 is all zeroes")
        if pcr11_is_signed(value, key, signatures, path=path):
            return SignedPhaseCheck(True, False, value)
        next_signed = pcr11_is_signed(pcr_after_phase(value, word), key, signatures, path=path)
        if extend and next_signed and may_extend():
            tpm.pcr_extend(UKI_PCR, boot_phase_digest(word))
            value = tpm.read_pcrs((UKI_PCR,))[UKI_PCR]
            if pcr11_is_signed(value, key, signatures, path=path):
                return SignedPhaseCheck(True, True, value)
            return SignedPhaseCheck(
                False,
                True,
                value,
                f"PCR 11 changed while {word} was extended: it matches no signed boot phase",
            )
    if next_signed and not extend:
        reason = (
            f"PCR 11 is one phase before {word}, which volumed was told not to extend (--tpm-boot-phases "
            "leave): the image's init must extend it before volumed starts"
        )
    elif next_signed:
        reason = f"volumed gave up on the TPM before extending {word}"
    else:
        reason = (
            f"PCR 11 matches no boot phase signed in {path}: the boot is past {word} (start-the-world was "
            "extended) or the booted UKI was not signed for this value"
        )
    return SignedPhaseCheck(False, False, value, reason)


def leave_signed_phase(tcti: str, opened_at: bytes, *, word: str = START_THE_WORLD) -> bytes | None:
    """Extend PCR 11 with ``word`` if it still holds ``opened_at`` (the value the window was opened at);
    PCR 11's value afterwards, or None when another process had moved it (then it is left alone, so it is
    never extended twice past the window). Blocking: call it from a worker thread.

    Raises:
        TPMUnavailableError, TPMCommandError: the TPM could not be used.
    """
    after = pcr_after_phase(opened_at, word)
    with TPMConnection(tcti) as tpm:
        value = tpm.read_pcrs((UKI_PCR,))[UKI_PCR]
        if value == after:  # an earlier try got through after its caller had given up on it
            return value
        if value != opened_at:
            return None
        tpm.pcr_extend(UKI_PCR, boot_phase_digest(word))
        return tpm.read_pcrs((UKI_PCR,))[UKI_PCR]

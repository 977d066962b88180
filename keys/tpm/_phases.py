"""Boot phases: PCR 11 extended with a phase word, as systemd-pcrphase does and Talos does at each phase.

A signed UKI carries signatures only for the PCR 11 values of the phases it was signed for (Talos signs
``enter-initrd:leave-initrd:enter-machined``), so extending PCR 11 with the next word (``start-the-world``)
closes the window in which keys under the signed PCR 11 policy unseal, until the next boot.
"""

from __future__ import annotations

import hashlib
from typing import Final

from ._connection import TPMConnection
from ._uki import UKI_PCR

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

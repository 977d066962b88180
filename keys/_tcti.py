"""TCTI strings, checked without tpm2-pytss: ``volumed run`` checks its ``--tpm-tcti`` at every start, with or
without the ``volumed[tpm]`` extra, and importing tpm2-pytss costs a start ~0.1 s."""

from __future__ import annotations

from typing import Final

DEFAULT_TCTI: Final = "device:/dev/tpmrm0"
"""The kernel's TPM resource manager; tests use ``swtpm:port=P``."""


def check_tcti(tcti: str) -> str:
    """``tcti`` when it has the shape of a tpm2-tss TCTI string (``name:config``), else ValueError saying why.

    Only the shape: whether the TPM is there shows when it is opened. Checked early so that a path given where
    a TCTI is meant (``/dev/tpmrm0``) is refused where it was given, not at the first TPM key.
    """
    name, colon, _ = tcti.partition(":")
    if not colon or not name or any(char.isspace() for char in name):
        raise ValueError(f"{tcti!r} is not a TCTI string like 'device:/dev/tpmrm0'")
    return tcti

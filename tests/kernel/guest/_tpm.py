"""Guest-side TPM helpers: the kernel's resource manager as the TCTI, PCR reads through the project's TPM
connection, and the provider of the scenarios' TPM key slot."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Final

from volumed.keys.tpm import TPMConnection, TPMKeyProvider

if TYPE_CHECKING:
    from volumed.storage.luks2 import Luks2Volume

    from ._support import Scenario

TCTI: Final = "device:/dev/tpmrm0"
"""The kernel's TPM resource manager, as a node's init reaches its TPM."""

TPM_SLOT: Final = 1
"""The key slot (and token id) of the TPM key; slot 0 holds the recovery passphrase."""


def require_tpm(scenario: Scenario) -> None:
    """Fail unless the guest kernel found the TPM (``/dev/tpm0`` and its resource manager ``/dev/tpmrm0``)."""
    for path in ("/dev/tpm0", "/dev/tpmrm0"):
        node = Path(path)
        scenario.check(node.exists() and stat.S_ISCHR(node.stat().st_mode), f"{path} is missing in the guest")


def read_pcr7() -> str:
    """PCR 7 (SHA-256 bank) as hex, read through the project's TPM connection."""
    with TPMConnection(TCTI) as tpm:
        return tpm.read_pcrs((7,))[7].hex()


def provider() -> TPMKeyProvider:
    """The TPM key of slot 1, sealed to PCR 7 through ``/dev/tpmrm0`` (Talos' default policy)."""
    return TPMKeyProvider(TPM_SLOT, pcrs=[7], tcti=TCTI, pcr_only=True)


def tpm_token(volume: Luks2Volume) -> dict[str, object]:
    """The volume's token at id == the TPM slot, as the JSON object the provider takes."""
    token = json.loads(volume.export_token(TPM_SLOT))
    if not isinstance(token, dict):
        raise TypeError(f"token {TPM_SLOT} is not a JSON object")
    return token

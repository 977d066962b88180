"""TPMPhase: whether TPM keys under Talos' signed PCR 11 policy can be used in this boot, and why not.

Talos' PCRStatus: the window opens when PCR 11 is extended with ``enter-machined`` and closes for the rest of
the boot with ``start-the-world``, once the boot's volumes are open.
"""

from __future__ import annotations

from enum import StrEnum

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import SYSTEM, type_name

TPM_PHASE_ID = "pcr11"


class TPMWindow(StrEnum):
    """Where the boot stands for keys sealed under the signed PCR 11 policy."""

    OPEN = "open"
    """PCR 11 holds a value the booted UKI signed: such keys seal and unseal now."""
    CLOSED = "closed"
    """Past the window: ``start-the-world`` extended (by volumed or earlier), until the next boot."""
    UNAVAILABLE = "unavailable"
    """No TPM, no signed UKI booted (PCR 11 zero, no ``/.extra`` files), or its files are unusable."""
    OFF = "off"
    """Boot phases switched off: volumed leaves PCR 11 alone and tries TPM keys whenever they are needed."""


class TPMPhaseSpec(Spec):
    """Published once PCR 11 was looked at (id = ``pcr11``); until then signed TPM keys wait.

    Attributes:
        window: where the boot stands for keys under the signed PCR 11 policy.
        phase: the last phase word volumed extended PCR 11 with (empty: none).
        reason: why keys under the signed policy cannot be used (empty while open or off).
        pcr11: PCR 11's value (hex) when last looked at (public: every process on the node may read it).
    """

    window: TPMWindow
    phase: str = ""
    reason: str = ""
    pcr11: str = ""


TPMPhaseDefinition: ResourceDefinition[TPMPhaseSpec] = ResourceDefinition(
    type=type_name("TPMPhases", SYSTEM),
    spec_model=TPMPhaseSpec,
    default_namespace=SYSTEM,
    aliases=("tpmphase", "tpmphases", "pcrstatus", "pcrstatuses"),
    print_columns=(
        PrintColumn("Window", "window"),
        PrintColumn("Phase", "phase"),
        PrintColumn("Reason", "reason"),
    ),
)

"""MetaLoaded: META has been looked for and read, so its tags (0x0f, the node UUID override) are known."""

from __future__ import annotations

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import SYSTEM, type_name

META_LOADED_ID = "meta"


class MetaLoadedSpec(Spec):
    """Published once discovery has shown the disks and META was read, or found absent or unusable
    (id = ``meta``).

    Until it exists, what META holds is unknown, not empty: the node UUID (META tag 0x0f beats SMBIOS) is not
    decided yet.

    Attributes:
        found: a usable META partition was found.
        error: why META's tags stay unknown although it was looked at (unreadable, corrupt, on a disk with an
            invalid or unreadable partition table); the MetaKeys of the last good read stay published (none
            when there was none).
    """

    found: bool
    error: str = ""


MetaLoadedDefinition: ResourceDefinition[MetaLoadedSpec] = ResourceDefinition(
    type=type_name("MetaLoads", SYSTEM),
    spec_model=MetaLoadedSpec,
    default_namespace=SYSTEM,
    aliases=("metaloaded", "metaloads"),
    print_columns=(PrintColumn("Found", "found"), PrintColumn("Error", "error")),
)

"""SystemInformation: the node's identity, whose UUID the nodeID keys are derived from."""

from __future__ import annotations

from enum import StrEnum

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import SYSTEM, type_name

SYSTEM_INFORMATION_ID = "systeminformation"


class UUIDSource(StrEnum):
    """Where the node UUID came from: a flag beats META tag 0x0f, which beats SMBIOS (``none``: nowhere)."""

    NONE = "none"
    """No UUID anywhere: ``uuid`` is empty."""
    SMBIOS = "smbios"
    """The SMBIOS product UUID."""
    META = "meta"
    """META tag 0x0f."""
    FLAG = "flag"
    """`volumed run --node-uuid`."""


class SystemInformationSpec(Spec):
    """The node UUID (id = ``systeminformation``); empty (source ``none``) when the node has none.

    Published once the UUID is decided (META read or found absent, SMBIOS looked at): until then there is no
    resource, and nodeID and KMS keys wait rather than fail.

    Attributes:
        uuid: the node UUID.
        source: where it came from.
    """

    uuid: str
    source: UUIDSource


SystemInformationDefinition: ResourceDefinition[SystemInformationSpec] = ResourceDefinition(
    type=type_name("SystemInformations", SYSTEM),
    spec_model=SystemInformationSpec,
    default_namespace=SYSTEM,
    aliases=("systeminformation", "sysinfo"),
    print_columns=(PrintColumn("UUID", "uuid"), PrintColumn("Source", "source")),
)

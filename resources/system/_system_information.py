"""SystemInformation: the node's identity, whose UUID the nodeID keys are derived from."""

from __future__ import annotations

from enum import StrEnum

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import SYSTEM, type_name

SYSTEM_INFORMATION_ID = "systeminformation"


class UUIDSource(StrEnum):
    """Where the node UUID came from: a flag beats META tag 0x0f, which beats SMBIOS."""

    SMBIOS = "smbios"
    META = "meta"
    FLAG = "flag"


class SystemInformationSpec(Spec):
    """The node UUID (id = ``systeminformation``)."""

    uuid: str
    source: UUIDSource


SystemInformationDefinition: ResourceDefinition[SystemInformationSpec] = ResourceDefinition(
    type=type_name("SystemInformations", SYSTEM),
    spec_model=SystemInformationSpec,
    default_namespace=SYSTEM,
    aliases=("systeminformation", "sysinfo"),
    print_columns=(PrintColumn("UUID", "uuid"), PrintColumn("Source", "source")),
)

"""SystemInformation: the node UUID nodeID and KMS keys are bound to (flag > META 0x0f > SMBIOS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.to_thread

from volumed.controllers.keys._providers import read_node_uuid
from volumed.resources import (
    SYSTEM,
    SYSTEM_INFORMATION_ID,
    MetaKeyDefinition,
    MetaKeySpec,
    SystemInformationDefinition,
    SystemInformationSpec,
    UUIDSource,
    meta_key_id,
)
from volumed.runtime import Pointer
from volumed.runtime.controller import Controller, Input, Output

if TYPE_CHECKING:
    from volumed.runtime.controller import ControllerContext

UUID_OVERRIDE_TAG = 0x0F


class SystemInformationController(Controller):
    """Publishes the node UUID once known.

    Without one, nodeID and KMS keys report "machine UUID is not populated".
    """

    name = "SystemInformation"
    inputs = (Input(SYSTEM, MetaKeyDefinition.type, meta_key_id(UUID_OVERRIDE_TAG)),)
    outputs = (Output(SystemInformationDefinition.type, namespace=SYSTEM),)

    def __init__(
        self, *, node_uuid: str | None = None, dmi_path: str = "/sys/class/dmi/id/product_uuid"
    ) -> None:
        self._flag = node_uuid
        self._dmi_path = dmi_path

    async def reconcile(self, ctx: ControllerContext) -> None:
        spec: SystemInformationSpec | None = None
        if self._flag:
            spec = SystemInformationSpec(uuid=self._flag, source=UUIDSource.FLAG)
        else:
            override = await ctx.find(
                Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(UUID_OVERRIDE_TAG)), MetaKeySpec
            )
            value = override.spec.value.get_secret_value() if override is not None else ""
            if value:  # used verbatim, as Talos does, so nodeID passphrases match
                spec = SystemInformationSpec(uuid=value, source=UUIDSource.META)
            else:
                smbios = await anyio.to_thread.run_sync(read_node_uuid, self._dmi_path)
                if smbios:
                    spec = SystemInformationSpec(uuid=smbios, source=UUIDSource.SMBIOS)
        if spec is not None:
            await ctx.apply(SystemInformationDefinition.new(SYSTEM_INFORMATION_ID, spec))

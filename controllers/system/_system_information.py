"""SystemInformation: the node UUID nodeID and KMS keys are bound to (flag > META 0x0f > SMBIOS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.to_thread

from volumed.controllers.keys._providers import read_node_uuid
from volumed.resources import (
    META_LOADED_ID,
    SYSTEM,
    SYSTEM_INFORMATION_ID,
    MetaKeyDefinition,
    MetaKeySpec,
    MetaLoadedDefinition,
    MetaLoadedSpec,
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
    """Publishes the node UUID once it is decided: at once from the flag, else only after META was read (or
    found absent), as Talos waits for META before SystemInformation, and never SMBIOS's UUID while META's
    tag 0x0f may still override it.

    A node with none publishes an empty UUID (source ``none``): nodeID and KMS keys then report "machine UUID
    is not populated"; while nothing is published they wait.
    """

    name = "SystemInformation"
    inputs = (
        Input(SYSTEM, MetaKeyDefinition.type, meta_key_id(UUID_OVERRIDE_TAG)),
        Input(SYSTEM, MetaLoadedDefinition.type, META_LOADED_ID),
    )
    outputs = (Output(SystemInformationDefinition.type, namespace=SYSTEM),)

    def __init__(
        self, *, node_uuid: str | None = None, dmi_path: str = "/sys/class/dmi/id/product_uuid"
    ) -> None:
        self._flag = node_uuid
        self._dmi_path = dmi_path

    async def reconcile(self, ctx: ControllerContext) -> None:
        spec = await self._decided(ctx)
        if spec is not None:
            await ctx.apply(SystemInformationDefinition.new(SYSTEM_INFORMATION_ID, spec))

    async def _decided(self, ctx: ControllerContext) -> SystemInformationSpec | None:
        """The node UUID with its source, or None while META has not been read."""
        if self._flag:
            return SystemInformationSpec(uuid=self._flag, source=UUIDSource.FLAG)
        loaded = await ctx.find(Pointer(SYSTEM, MetaLoadedDefinition.type, META_LOADED_ID), MetaLoadedSpec)
        if loaded is None:
            return None
        override = await ctx.find(
            Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(UUID_OVERRIDE_TAG)), MetaKeySpec
        )
        value = override.spec.value.get_secret_value() if override is not None else ""
        if value:  # used verbatim, as Talos does, so nodeID passphrases match
            return SystemInformationSpec(uuid=value, source=UUIDSource.META)
        smbios = await anyio.to_thread.run_sync(read_node_uuid, self._dmi_path)
        if smbios:
            return SystemInformationSpec(uuid=smbios, source=UUIDSource.SMBIOS)
        return SystemInformationSpec(uuid="", source=UUIDSource.NONE)

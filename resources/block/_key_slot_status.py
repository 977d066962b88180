"""KeySlotStatus: the outcome of the last key-slot sync of an open volume."""

from __future__ import annotations

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import BLOCK, type_name


class KeySlotStatusSpec(Spec):
    """What the KeySlotSyncer did to one volume's header (id = volume id).

    Attributes:
        keys_digest: identifies the key configuration the slots were synced to.
        failed_syncs: ``error adding|updating|removing key slot N <kind>: ...`` lines (never fatal).
        kdf_runs: KDF runs spent by this sync (0 when every configured slot matched its fingerprint).
    """

    keys_digest: str
    failed_syncs: tuple[str, ...] = ()
    kdf_runs: int = 0


KeySlotStatusDefinition: ResourceDefinition[KeySlotStatusSpec] = ResourceDefinition(
    type=type_name("KeySlotStatuses", BLOCK),
    spec_model=KeySlotStatusSpec,
    default_namespace=BLOCK,
    aliases=("kss", "keyslotstatus", "keyslotstatuses"),
    print_columns=(PrintColumn("KDF runs", "kdf_runs"), PrintColumn("Failed syncs", "failed_syncs")),
)

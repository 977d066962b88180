"""VolumeKeyStatus: which configured keys of a volume can be produced now, and why not."""

from __future__ import annotations

from pydantic import computed_field

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import BLOCK, type_name


class KeyReadinessSpec(Spec):
    """One key slot: can its passphrase be produced now?

    Attributes:
        slot: the key slot.
        kind: the key's kind (``static``, ``nodeID``, ``kms``, ``tpm``).
        ready: its passphrase can be produced now.
        reason: why not (no secret in it); empty when ready.
        lock_to_state: the key is locked to STATE (needs STATE's salt).
    """

    slot: int
    kind: str
    ready: bool
    reason: str = ""
    lock_to_state: bool = False


class VolumeKeyStatusSpec(Spec):
    """Readiness of every configured key of one volume (id = volume id), in slot order.

    Attributes:
        keys: one entry per configured key slot.
    """

    keys: tuple[KeyReadinessSpec, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ready_slots(self) -> tuple[int, ...]:
        """Slots whose keys can be produced now (serialized too: `volumed get` shows it as a column)."""
        return tuple(key.slot for key in self.keys if key.ready)


VolumeKeyStatusDefinition: ResourceDefinition[VolumeKeyStatusSpec] = ResourceDefinition(
    type=type_name("VolumeKeyStatuses", BLOCK),
    spec_model=VolumeKeyStatusSpec,
    default_namespace=BLOCK,
    aliases=("vks", "volumekeystatus", "volumekeystatuses"),
    print_columns=(PrintColumn("Ready slots", "ready_slots"),),
)

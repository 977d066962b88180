"""VolumeStatus: where a volume is in its lifecycle, and what was found and done on the way."""

from __future__ import annotations

from enum import StrEnum

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import BLOCK, type_name


class VolumePhase(StrEnum):
    """Talos' volume phases, in lifecycle order."""

    WAITING = "waiting"
    FAILED = "failed"
    MISSING = "missing"
    LOCATED = "located"
    PROVISIONED = "provisioned"
    PREPARED = "prepared"
    READY = "ready"
    CLOSED = "closed"


class VolumeStatusSpec(Spec):
    """The observed state of one volume (id = volume id).

    Attributes:
        pre_fail_phase: the phase before ``failed``, restored on the next attempt.
        location: the raw device (partition) of the volume.
        mount_location: what gets mounted: the activated (decrypted) device, or ``location`` when unencrypted.
        encryption_slot: the key slot that opened the volume this boot.
        configured_encryption_keys: the kinds of the configured keys, in slot order.
        encryption_failed_syncs: key-slot sync errors (never fatal).
        error_message: why it failed, or (phase waiting) what it waits for.
        encryption_ignored_options: dm-crypt flags of the config (perf options, ``allow_discards``) the
            activation backend runs without (the fuse backend has no workqueues and passes no discards).
        waiting_for: phase waiting: the volumes it waits on (their readiness, or STATE's salt); empty when it
            waits on something else (disk discovery, the kernel).
    """

    phase: VolumePhase = VolumePhase.WAITING
    pre_fail_phase: VolumePhase | None = None
    error_message: str = ""
    location: str = ""
    offset: int = 0
    parent_location: str = ""
    partition_index: int = 0
    uuid: str = ""
    partition_uuid: str = ""
    mount_location: str = ""
    size: int = 0
    filesystem: str = ""
    encryption_provider: str = ""
    encryption_slot: int | None = None
    configured_encryption_keys: tuple[str, ...] = ()
    encryption_failed_syncs: tuple[str, ...] = ()
    locked_to_state: bool = False
    tpm_pcrs: tuple[int, ...] = ()
    waiting_for: tuple[str, ...] = ()
    encryption_ignored_options: tuple[str, ...] = ()


VolumeStatusDefinition: ResourceDefinition[VolumeStatusSpec] = ResourceDefinition(
    type=type_name("VolumeStatuses", BLOCK),
    spec_model=VolumeStatusSpec,
    default_namespace=BLOCK,
    aliases=("vs", "volumestatus", "volumestatuses"),
    print_columns=(
        PrintColumn("Phase", "phase"),
        PrintColumn("Location", "location"),
        PrintColumn("Mount", "mount_location"),
        PrintColumn("Size", "size"),
        PrintColumn("Filesystem", "filesystem"),
        PrintColumn("Encryption", "encryption_provider"),
        PrintColumn("Slot", "encryption_slot"),
        PrintColumn("Error", "error_message"),
    ),
)

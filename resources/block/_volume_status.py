"""VolumeStatus: where a volume is in its lifecycle, and what was found and done on the way."""

from __future__ import annotations

from enum import StrEnum

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import BLOCK, type_name


class VolumePhase(StrEnum):
    """Talos' volume phases, in lifecycle order."""

    WAITING = "waiting"
    """Not tried yet, or waiting for something: ``error_message`` says what, ``waiting_for`` names volumes."""
    FAILED = "failed"
    """The last attempt failed (``error_message``); ``pre_fail_phase`` is where the next attempt resumes."""
    MISSING = "missing"
    """No partition carries the locator and the volume is not to be provisioned (or is blank where it must
    hold something)."""
    LOCATED = "located"
    """Its partition was found (the same attempt goes on to ``provisioned``)."""
    PROVISIONED = "provisioned"
    """Its partition exists: found, or made now."""
    PREPARED = "prepared"
    """Opened (unlocked when encrypted): ``mount_location`` is its block device."""
    READY = "ready"
    """It has its filesystem (made when it was empty): the Mounter mounts it."""
    CLOSED = "closed"
    """Talos' phase of a closed volume; volumed's controllers do not set it."""


class VolumeStatusSpec(Spec):
    """The observed state of one volume (id = volume id).

    Attributes:
        phase: where the volume is in its lifecycle.
        pre_fail_phase: the phase before ``failed``, restored on the next attempt.
        location: the raw device (partition) of the volume.
        offset: the volume's byte offset inside ``location`` (partitions of image files).
        parent_location: the disk the volume is on.
        partition_index: its GPT partition number.
        uuid: the UUID of what was found on it (filesystem or LUKS2 header).
        partition_uuid: its GPT partition's unique GUID.
        size: its size in bytes.
        filesystem: the filesystem it has (set when it reaches ``ready``).
        encryption_provider: ``luks2`` for an encrypted volume once opened; empty otherwise.
        locked_to_state: one of its configured keys is locked to STATE.
        tpm_pcrs: the PCRs its configured TPM keys are bound to.
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

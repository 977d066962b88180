"""SwapStatus: one swap area the kernel uses, as ``/proc/swaps`` lists it (Talos' SwapStatus)."""

from __future__ import annotations

from volumed.runtime import PrintColumn, ResourceDefinition, Spec

from .._namespaces import BLOCK, type_name


class SwapStatusSpec(Spec):
    """A line of ``/proc/swaps`` (id = the device as listed there), every swap area of the node, not only
    volumed's own, as in Talos; refreshed every minute and when a mount or swap changes.

    Attributes:
        device: the swap device or file, as the kernel names it (``/dev/dm-0`` for ``/dev/mapper/x``).
        type: ``partition`` or ``file``.
        size: the area's size in bytes.
        size_human: the same in IEC units, as go-humanize's IBytes writes it (Talos' ``sizeHuman``).
        used: bytes in use.
        used_human: the same in IEC units.
        priority: the swap priority (negative: the kernel's default order).
    """

    device: str
    type: str
    size: int
    size_human: str
    used: int
    used_human: str
    priority: int


SwapStatusDefinition: ResourceDefinition[SwapStatusSpec] = ResourceDefinition(
    type=type_name("SwapStatuses", BLOCK),
    spec_model=SwapStatusSpec,
    default_namespace=BLOCK,
    aliases=("swap", "swaps", "swapstatus", "swapstatuses"),
    print_columns=(
        PrintColumn("Device", "device"),
        PrintColumn("Size", "size_human"),
        PrintColumn("Used", "used_human"),
        PrintColumn("Priority", "priority"),
    ),
)

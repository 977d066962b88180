"""Namespaces and the API group of volumed's own resource types."""

from typing import Final

BLOCK: Final = "block"
"""Disks, volumes, mounts and their encryption."""

CONFIG: Final = "config"
"""The machine config as loaded: its status and the documents derived from it."""

SYSTEM: Final = "system"
"""Facts about the node: its identity and the META partition."""

GROUP: Final = "volumed.dev"


def type_name(plural: str, group: str) -> str:
    """``VolumeStatuses`` + ``block`` -> ``VolumeStatuses.block.volumed.dev``."""
    return f"{plural}.{group}.{GROUP}"

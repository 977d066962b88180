"""Tag 0x0f: the node UUID that replaces the SMBIOS one (for nodeID keys and the node's identity)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ._errors import MetaValueError
from ._tags import MetaTag

if TYPE_CHECKING:
    from ._partition import MetaPartition


def read_uuid_override(partition: MetaPartition) -> str | None:
    """The UUID stored in tag 0x0f as text, None when the tag is not set.

    The text is returned as stored (Talos uses it verbatim, so a nodeID passphrase built from it matches).

    Raises:
        MetaValueError: the value is not UTF-8 text.
        MetaDeviceError: the device cannot be read.
    """
    value = partition.get(MetaTag.UUID_OVERRIDE)
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise MetaValueError(f"tag 0x0f holds {len(value)} bytes that are not UTF-8 text") from None


def write_uuid_override(partition: MetaPartition, value: str) -> bool:
    """Store ``value`` (a UUID, e.g. ``12345678-1234-5678-1234-567812345678``) in tag 0x0f.

    Returns whether anything changed.

    Raises:
        MetaValueError: ``value`` is not a UUID; nothing is written.
    """
    try:
        uuid.UUID(value)
    except ValueError:
        raise MetaValueError(f"not a UUID: {value!r}") from None
    return partition.set(MetaTag.UUID_OVERRIDE, value.encode("ascii"))

"""The META tags Talos defines (pkg/machinery/meta), and volumed's own, by number."""

from __future__ import annotations

import enum


class MetaTag(enum.IntEnum):
    """Well-known META tags; any other tag 1..255 may be stored too."""

    UPGRADE = 6
    STAGED_UPGRADE_IMAGE_REF = 7
    STAGED_UPGRADE_INSTALL_OPTIONS = 8
    STATE_ENCRYPTION_CONFIG = 9
    METAL_NETWORK_PLATFORM_CONFIG = 10
    DOWNLOAD_URL_CODE = 11
    USER_RESERVED_1 = 12
    USER_RESERVED_2 = 13
    USER_RESERVED_3 = 14
    UUID_OVERRIDE = 15
    UNIQUE_MACHINE_TOKEN = 16
    DISK_IMAGE_BOOTLOADER = 17
    STAGED_WIPE_SELECTORS = 18
    # volumed's own, far above Talos' (which grow upwards from 6) and its user-reserved 12-14:
    VOLUMED_MKFS_PENDING = 0xF0  # mkfs of an unencrypted volume started and has not finished yet


def tag_name(tag: int) -> str:
    """A readable name for ``tag`` (``STATE_ENCRYPTION_CONFIG``), or ``""`` for tags Talos does not name."""
    try:
        return MetaTag(tag).name
    except ValueError:
        return ""


def parse_tag(text: str) -> int:
    """A tag from the command line: decimal (``9``) or hex (``0x0f``), or a name (``UUID_OVERRIDE``).

    Raises:
        ValueError: not a number or known name, or outside 1..255.
    """
    cleaned = text.strip()
    try:
        tag = int(cleaned, 16) if cleaned.lower().startswith("0x") else int(cleaned, 10)
    except ValueError:
        try:
            tag = MetaTag[cleaned.upper()].value
        except KeyError:
            raise ValueError(f"invalid tag {text!r}: expected a number (9 or 0x09) or a tag name") from None
    if not 1 <= tag <= 0xFF:
        raise ValueError(f"invalid tag {text!r}: must be between 1 and 255")
    return tag

"""Well-known GPT partition type GUIDs."""

from __future__ import annotations

import uuid
from typing import Final

#: Unused entry.
EMPTY_TYPE: Final = uuid.UUID(int=0)
#: Linux filesystem data: what Talos uses for META, STATE and EPHEMERAL (and sgdisk's 8300).
LINUX_FILESYSTEM_DATA: Final = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4")
#: Linux swap (sgdisk 8200).
LINUX_SWAP: Final = uuid.UUID("0657fd6d-a4ab-43c4-84e5-0933c84b4f4f")
#: Linux LVM (sgdisk 8e00).
LINUX_LVM: Final = uuid.UUID("e6d6d379-f507-44c2-a23c-238f2a3df928")
#: EFI system partition (sgdisk ef00).
EFI_SYSTEM: Final = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
#: BIOS boot partition (sgdisk ef02).
BIOS_BOOT: Final = uuid.UUID("21686148-6449-6e6f-744e-656564454649")

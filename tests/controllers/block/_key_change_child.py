"""Child process of test_key_change_crash: open a volume with its old key, then run key-slot sync with the
changed config, as the KeySlotSyncer does when the config changes while the volume is open.

argv: IMAGE SCENARIO. The parent arms the crash point (``VOLUMED_LUKS2_CRASH_AFTER_WRITE``) in the
environment; exit 0 means the sync finished, 3 that it reported failures, 137 that the crash point hit.
"""

from __future__ import annotations

import sys

import anyio

from volumed.controllers.block._encryption import Location, SlotKey, open_encrypted, sync_key_slots
from volumed.keys import StaticKeyProvider
from volumed.keys.testing import FakeSealingKeyProvider
from volumed.resources import EncryptionConfigSpec, PbkdfSpec

ENC = EncryptionConfigSpec(pbkdf=PbkdfSpec(type="pbkdf2", iterations=1000), key_size_bits=256)
OLD = b"old passphrase"
NEW = b"new passphrase"
RECOVERY = b"recovery passphrase"


def static(slot: int, passphrase: bytes) -> SlotKey:
    return SlotKey(slot, "static", StaticKeyProvider(slot=slot, passphrase=passphrase))


def sealed(slot: int) -> SlotKey:
    return SlotKey(slot, "kms", FakeSealingKeyProvider(slot=slot, kind="kms"))


SCENARIOS: dict[str, tuple[list[SlotKey], list[SlotKey]]] = {
    # keys the volume was opened with, keys after the config change
    "static": ([static(0, OLD)], [static(0, NEW)]),
    "static-to-kms": ([static(0, OLD)], [sealed(0)]),
    "kms-to-static": ([sealed(0)], [static(0, NEW)]),
    "two-slots": ([static(0, OLD), static(1, RECOVERY)], [static(0, NEW), static(1, RECOVERY)]),
    "move": ([static(0, OLD)], [static(1, NEW)]),  # the only key moves to another slot
}


async def main(image: str, scenario: str) -> int:
    before, after = SCENARIOS[scenario]
    location = Location(image)
    opened = await open_encrypted(location, ENC, before)
    failed = await sync_key_slots(location, ENC, after, opened)
    for line in failed:
        print(line, file=sys.stderr)
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1], sys.argv[2]))

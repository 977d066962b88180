"""``pcrs: []`` under the signed policy: only PCR 11 binds the key, so a PCR 7 change (a SecureBoot database
update) does not stop it unsealing, while a key bound to PCR 7 fails (docs/keys.md's threat model)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from tests._uki import make_uki, measure_uki_boot
from volumed.keys.tpm import PCRPolicyError

if TYPE_CHECKING:
    from pathlib import Path

    from tests._swtpm import Swtpm

pytestmark = pytest.mark.interop


def test_no_pcrs_survive_a_pcr7_change(swtpm: Swtpm, tmp_path: Path) -> None:
    uki = make_uki(tmp_path / "uki", swtpm)
    measure_uki_boot(swtpm, uki)
    unbound, bound = uki.provider(swtpm, pcrs=()), uki.provider(swtpm)
    unbound_key, bound_key = anyio.run(unbound.new_key), anyio.run(bound.new_key)
    swtpm.pcr_extend(7, b"db update")
    assert anyio.run(unbound.get_key, unbound_key.token).reveal() == unbound_key.passphrase.reveal()
    with pytest.raises(PCRPolicyError):
        anyio.run(bound.get_key, bound_key.token)

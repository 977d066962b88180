"""The UKI files are read before the TPM connection takes the per-TCTI lock: a slow read (a file on a slow
filesystem) never makes the other TPM keys on that TPM wait or fail "TPM busy"."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from tests._uki import make_uki, measure_uki_boot
from volumed.keys.tpm import _policy, _uki
from volumed.keys.tpm._connection import _lock_for

if TYPE_CHECKING:
    from pathlib import Path

    from tests._swtpm import Swtpm

pytestmark = pytest.mark.interop


def test_seal_and_unseal_read_the_files_outside_the_tpm_lock(
    swtpm: Swtpm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uki = make_uki(tmp_path / "uki", swtpm)
    measure_uki_boot(swtpm, uki)
    lock = _lock_for(swtpm.tcti)
    held: list[tuple[str, bool]] = []

    def key_read(path: Path) -> _uki.PCRSigningKey:
        held.append(("key", lock.locked()))
        return _uki.load_pcr_public_key(path)

    def signatures_read(path: Path) -> tuple[_uki.PCRSignature, ...]:
        held.append(("signatures", lock.locked()))
        return _uki.load_pcr_signatures(path)

    monkeypatch.setattr(_policy, "load_pcr_public_key", key_read)
    monkeypatch.setattr(_policy, "load_pcr_signatures", signatures_read)
    provider = uki.provider(swtpm)
    new = anyio.run(provider.new_key)
    assert anyio.run(provider.get_key, new.token).reveal() == new.passphrase.reveal()
    assert {name for name, _ in held} == {"key", "signatures"}
    assert [name for name, locked in held if locked] == []

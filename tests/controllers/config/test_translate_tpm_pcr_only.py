"""`tpm.options.volumedPcrOnly` reaches the volume's key slot spec (it was validated, then dropped by the
translation, so a node without a UKI sealed under the signed policy it cannot satisfy)."""

from __future__ import annotations

import pytest

from volumed.config import check_config
from volumed.controllers.config._translate import desired_volumes


@pytest.mark.parametrize(("options", "expected"), [("{volumedPcrOnly: true}", True), ("{pcrs: [7]}", False)])
def test_the_pcr_only_extension_reaches_the_key_slot(options: str, expected: bool) -> None:
    machine, issues = check_config(
        "apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: d\nprovisioning: {diskSelector: {match: 'true'},"
        " minSize: 1GiB}\nencryption:\n  provider: luks2\n  keys:\n    - slot: 0\n"
        f"      tpm: {{options: {options}}}\n"
    )
    assert not issues, issues
    assert machine is not None
    volume = next(v for v in desired_volumes(machine) if v.volume_id == "u-d")
    assert volume.config.encryption is not None
    assert [k.tpm_pcr_only for k in volume.config.encryption.keys] == [expected]

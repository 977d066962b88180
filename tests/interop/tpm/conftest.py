"""One swtpm per test session; each test gets it freshly "rebooted" with PCR 7 measured, as firmware would."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests._swtpm import Swtpm

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

FIRMWARE_PCR7_EVENT = b"firmware: SecureBoot=1 PK KEK db dbx"
"""What the fake firmware measures into PCR 7 at each boot (a fresh swtpm has all-zero PCRs)."""


@pytest.fixture(scope="session")
def swtpm_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swtpm]:
    """The session's swtpm over TCP, stopped cleanly (TPM2_Shutdown + swtpm_ioctl -s) at the end."""
    with Swtpm.start(tmp_path_factory.mktemp("swtpm")) as tpm:
        yield tpm
    assert not tpm.running


@pytest.fixture
def swtpm(swtpm_session: Swtpm) -> Iterator[Swtpm]:
    """The session swtpm after a reboot (PCRs reset) and a PCR 7 measurement; fails the test if it leaves a
    transient object or session behind (no resource manager on swtpm's socket)."""
    swtpm_session.reboot()
    swtpm_session.pcr_extend(7, FIRMWARE_PCR7_EVENT)
    yield swtpm_session
    leaked = {kind: swtpm_session.handle_count(kind) for kind in (0x80, 0x02, 0x03)}
    assert leaked == {0x80: 0, 0x02: 0, 0x03: 0}, f"TPM handles left behind: {leaked}"


@pytest.fixture
def other_swtpm(tmp_path: Path) -> Iterator[Swtpm]:
    """A second, independent TPM (other seeds, so another SRK), PCR 7 measured the same way."""
    with Swtpm.start(tmp_path / "other-swtpm") as tpm:
        tpm.pcr_extend(7, FIRMWARE_PCR7_EVENT)
        yield tpm

"""The swtpm test helper: clean stops leave no process and no dictionary-attack strike; state persists."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import pytest

from tests._swtpm import Swtpm

if TYPE_CHECKING:
    from pathlib import Path


def lockout_counter(tpm: Swtpm) -> int:
    from tpm2_pytss import TPM2_CAP, TPM2_PT

    with tpm.esapi() as esapi:
        _, data = esapi.get_capability(TPM2_CAP.TPM_PROPERTIES, TPM2_PT.LOCKOUT_COUNTER, 1)
    (prop,) = data.data.tpmProperties
    assert prop.property == TPM2_PT.LOCKOUT_COUNTER
    return int(prop.value)


def srk_name(tpm: Swtpm) -> bytes:
    from tpm2_pytss import ESYS_TR

    from volumed.keys.tpm import srk_template

    with tpm.esapi() as esapi:
        handle = esapi.create_primary(None, srk_template(), ESYS_TR.OWNER)[0]
        try:
            return bytes(esapi.tr_get_name(handle))
        finally:
            esapi.flush_context(handle)


def use_a_da_protected_key(tpm: Swtpm) -> None:
    """Authorise with a key that lacks noDA: until an orderly shutdown, a power loss is now a DA strike."""
    from tpm2_pytss import ESYS_TR, TPMA_OBJECT

    from volumed.keys.tpm import srk_template

    template = srk_template()
    template.publicArea.objectAttributes &= ~TPMA_OBJECT.NODA
    with tpm.esapi() as esapi:
        handle = esapi.create_primary(None, template, ESYS_TR.OWNER)[0]
        try:
            esapi.create(handle, None, "ecc256")
        finally:
            esapi.flush_context(handle)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_clean_stop_ends_the_process_and_keeps_state(tmp_path: Path) -> None:
    with Swtpm.start(tmp_path / "tpm") as tpm:
        pid = tpm.pid
        first_name = srk_name(tpm)
        tpm.pcr_extend(7, b"measured")
        use_a_da_protected_key(tpm)
    assert not tpm.running
    assert not process_exists(pid)

    with Swtpm.start(tmp_path / "tpm") as again:
        assert srk_name(again) == first_name  # same seeds: the same SRK is recreated
        assert again.pcr_read(7) == bytes(32)  # a new power-on: PCRs reset
        assert lockout_counter(again) == 0  # the clean stop cost no dictionary-attack strike


def test_a_killed_swtpm_counts_a_lockout_strike(tmp_path: Path) -> None:
    """Why the helper always stops with TPM2_Shutdown: a power loss without an orderly shutdown, after a
    DA-protected key was used, is a DA strike (our sealed keys and SRK are noDA, so they never count)."""
    tpm = Swtpm.start(tmp_path / "tpm")
    use_a_da_protected_key(tpm)
    os.kill(tpm.pid, signal.SIGKILL)
    tpm.stop()  # reaps the killed process
    assert not tpm.running

    with Swtpm.start(tmp_path / "tpm") as again:
        assert lockout_counter(again) == 1


def test_reboot_resets_pcrs_without_restarting(tmp_path: Path) -> None:
    with Swtpm.start(tmp_path / "tpm") as tpm:
        pid = tpm.pid
        measured = tpm.pcr_extend(7, b"firmware")
        assert measured != bytes(32)
        tpm.reboot()
        assert tpm.pcr_read(7) == bytes(32)
        assert tpm.pid == pid
        assert tpm.handle_count() == 0


def test_qemu_flavour_starts_and_stops_over_the_control_socket(tmp_path: Path) -> None:
    tpm = Swtpm.start_for_qemu(tmp_path / "vtpm")
    try:
        assert tpm.ctrl_socket is not None
        assert tpm.ctrl_socket.is_socket()
        assert tpm.qemu_args()[:2] == ["-chardev", f"socket,id=chrtpm,path={tpm.ctrl_socket}"]
        with pytest.raises(RuntimeError, match="no TCP command port"):
            _ = tpm.tcti
    finally:
        tpm.stop()
    assert not tpm.running
    assert not process_exists(tpm.pid)

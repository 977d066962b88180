"""The PCR 11 boot phases around TPM keys under Talos' signed policy, on swtpm with systemd-measure's files.

PCR 11 is measured as a UKI boot leaves it when the initrd is left (sections, ``enter-initrd``,
``leave-initrd``); `volumed run` extends ``enter-machined`` (the value the UKI signed), seals and opens, and
extends ``start-the-world`` once the volumes are open, as Talos' PCRStatusController does. The values PCR 11
must hold are worked out here with hashlib from the phase words, not by volumed's code.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import yaml

from tests._swtpm import Swtpm
from tests._uki import SECTIONS, UKI, make_uki
from tests.system.lifecycle._node import luks_dump, user_volume_config, volume_config
from volumed.cli.run import EXIT_VOLUME_FAILED

if TYPE_CHECKING:
    from tests.system.lifecycle._node import Node

FIRMWARE: Final = b"firmware: SecureBoot=1 PK KEK db dbx"
RUN_LIMIT: Final = 120.0


def documents() -> list[dict[str, Any]]:
    """STATE and EPHEMERAL unencrypted; u-data with a TPM key as Talos writes it (PCR 7 + signed PCR 11)."""
    data = user_volume_config("data", [{"slot": 0, "tpm": {"options": {"pcrs": [7]}}}])
    data["provisioning"].update({"minSize": "64MiB", "maxSize": "64MiB", "grow": False})
    ephemeral = volume_config("EPHEMERAL")
    ephemeral["provisioning"] = {"grow": False}
    return [volume_config("STATE"), ephemeral, data]


def extend(value: bytes, data: bytes) -> bytes:
    """A SHA-256 PCR extend of ``value`` with the digest of ``data`` (TPM2_PCR_Event semantics)."""
    return hashlib.sha256(value + hashlib.sha256(data).digest()).digest()


def boot_to_leave_initrd(tpm: Swtpm, uki: UKI) -> bytes:
    """A reboot: PCR 7 by the firmware, PCR 11 by systemd-stub and the initrd up to ``leave-initrd``.

    Returns PCR 11 as computed by hand (and checked against the TPM).
    """
    tpm.reboot()
    tpm.pcr_extend(7, FIRMWARE)
    expected = bytes(32)
    for name, content in [*SECTIONS.items(), (".pcrpkey", uki.public_key.read_bytes())]:
        for data in (name.encode() + b"\0", content):
            tpm.pcr_extend(11, data)
            expected = extend(expected, data)
    for word in (b"enter-initrd", b"leave-initrd"):
        tpm.pcr_extend(11, word)
        expected = extend(expected, word)
    assert tpm.pcr_read(11) == expected
    assert extend(expected, b"enter-machined") == uki.expected_pcr11  # what systemd-measure signed
    return expected


def run_argv(node: Node, tpm: Swtpm, uki: UKI, *extra: str, once: bool = True) -> list[str]:
    return [
        *node.run_argv(timeout=30.0, once=once),
        "--tpm-tcti", tpm.tcti,
        "--tpm-pcr-public-key", str(uki.public_key),
        "--tpm-pcr-signature", str(uki.signature),
        *extra,
    ]  # fmt: skip


def run_once(node: Node, tpm: Swtpm, uki: UKI, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        run_argv(node, tpm, uki, *extra), capture_output=True, text=True, timeout=RUN_LIMIT, check=False
    )


def test_volumed_opens_the_window_with_enter_machined_and_closes_it_with_start_the_world(node: Node) -> None:
    node.write_config(*documents())
    with Swtpm.start(node.workdir / "tpm") as tpm:
        uki = make_uki(node.workdir / "uki", tpm)
        initrd_left = boot_to_leave_initrd(tpm, uki)

        first = run_once(node, tpm, uki)
        assert first.returncode == 0, first.stdout + first.stderr  # sealed: PCR 11 was at enter-machined
        machined = extend(initrd_left, b"enter-machined")
        assert tpm.pcr_read(11) == extend(machined, b"start-the-world")
        tokens = luks_dump(node.region("u-data"))["tokens"]
        assert [t["UserData"]["pubkey_pcrs"] for t in tokens.values() if t["type"] == "talos-tpm2"] == [[11]]

        # Later in the same boot (another process): PCR 11 matches no signed phase, nor does the value after
        # enter-machined; the key is not tried and PCR 11 is not touched.
        again = run_once(node, tpm, uki)
        output = " ".join((again.stdout + again.stderr).split())
        assert again.returncode == EXIT_VOLUME_FAILED, output
        assert "the boot is past enter-machined (start-the-world was extended)" in output, output
        assert tpm.pcr_read(11) == extend(machined, b"start-the-world")

        # The next boot opens the volume through the TPM key again.
        boot_to_leave_initrd(tpm, uki)
        third = run_once(node, tpm, uki)
        assert third.returncode == 0, third.stdout + third.stderr
        assert luks_dump(node.region("u-data"))["tokens"] == tokens  # opened, not resealed
    assert not node.leftovers()


def test_boot_phases_off_leaves_pcr11_alone(node: Node) -> None:
    node.write_config(*documents())
    with Swtpm.start(node.workdir / "tpm") as tpm:
        uki = make_uki(node.workdir / "uki", tpm)
        initrd_left = boot_to_leave_initrd(tpm, uki)
        tpm.pcr_extend(11, b"enter-machined")  # the image's own init extended it
        result = run_once(node, tpm, uki, "--tpm-boot-phases", "off")
        assert result.returncode == 0, result.stdout + result.stderr
        assert tpm.pcr_read(11) == extend(initrd_left, b"enter-machined")
    assert not node.leftovers()


def test_leave_only_uses_the_window_the_init_opened_and_closes_it(node: Node) -> None:
    node.write_config(*documents())
    with Swtpm.start(node.workdir / "tpm") as tpm:
        uki = make_uki(node.workdir / "uki", tpm)
        initrd_left = boot_to_leave_initrd(tpm, uki)
        refused = run_once(node, tpm, uki, "--tpm-boot-phases", "leave")  # nobody extended enter-machined
        output = refused.stdout + refused.stderr
        assert refused.returncode == EXIT_VOLUME_FAILED, output
        assert "PCR 11 is one phase before enter-machined, which volumed was told not to extend" in output, (
            output
        )
        assert tpm.pcr_read(11) == initrd_left  # volumed extended nothing

        tpm.pcr_extend(11, b"enter-machined")
        result = run_once(node, tpm, uki, "--tpm-boot-phases", "leave")
        assert result.returncode == 0, result.stdout + result.stderr
        assert tpm.pcr_read(11) == extend(extend(initrd_left, b"enter-machined"), b"start-the-world")
    assert not node.leftovers()


def get_yaml(node: Node, kind: str) -> list[dict[str, Any]]:
    shown = node.volumed("get", kind, "-o", "yaml", "--socket", str(node.state_dir / "api.sock"))
    return [doc for doc in yaml.safe_load_all(shown.stdout) if doc]


def wait_for(what: str, probe: Any, limit: float = 60.0) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (subprocess.CalledProcessError, AssertionError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_volumekeystatuses_and_tpmphases_say_why_the_tpm_key_cannot_be_used(node: Node) -> None:
    node.write_config(*documents())
    with Swtpm.start(node.workdir / "tpm") as tpm:
        uki = make_uki(node.workdir / "uki", tpm)
        boot_to_leave_initrd(tpm, uki)
        daemon = subprocess.Popen(
            run_argv(node, tpm, uki, once=False), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:

            def closed() -> dict[str, Any] | None:
                [phase] = get_yaml(node, "tpmphases")
                return phase if phase["spec"]["window"] == "closed" else None

            phase = wait_for("the TPM window to close", closed)
            assert phase["spec"]["phase"] == "start-the-world"

            def key_reason() -> str:
                statuses = {doc["metadata"]["id"]: doc["spec"] for doc in get_yaml(node, "volumekeystatuses")}
                [key] = statuses["u-data"]["keys"]
                return "" if key["ready"] else str(key["reason"])

            reason = wait_for("the TPM key's reason", key_reason)
            assert "TPM keys are locked for the rest of this boot" in reason
            volumes = {doc["metadata"]["id"]: doc["spec"] for doc in get_yaml(node, "volumestatuses")}
            assert volumes["u-data"]["phase"] == "ready"  # opened inside the window
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, _ = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, out
    assert not node.leftovers()


def tpm_then_static() -> list[dict[str, Any]]:
    """u-data with the TPM key in slot 0 and a static key in slot 1 (the fallback)."""
    docs = documents()
    docs[2]["encryption"]["keys"].append({"slot": 1, "static": {"passphrase": "u-data fallback"}})
    return docs


def test_closing_the_window_leaves_the_key_slots_and_their_failures_as_they_were(node: Node) -> None:
    node.write_config(*tpm_then_static())
    with Swtpm.start(node.workdir / "tpm") as tpm:
        uki = make_uki(node.workdir / "uki", tpm)
        boot_to_leave_initrd(tpm, uki)
        first = run_once(node, tpm, uki)
        output = first.stdout + first.stderr
        assert first.returncode == 0, output
        assert "key slot sync incomplete" not in output, output  # the TPM slot was not re-synced once closed
        assert "not in line with the config" not in output, output

        boot_to_leave_initrd(tpm, uki)
        tpm.pcr_extend(7, b"another db")  # SecureBoot changed: the TPM key no longer unseals
        changed = run_once(node, tpm, uki)
        output = " ".join((changed.stdout + changed.stderr).split())
        assert changed.returncode == 0, output  # opened by the static key
        assert "error updating key slot 0 tpm: tpm key for slot 0: PCR policy check failed" in output, output
        assert "key slot 0 tpm: tpm key for slot 0: TPM keys are locked" not in output, output  # it stays
    assert not node.leftovers()


def static_volumes() -> list[dict[str, Any]]:
    """STATE, EPHEMERAL and u-data with a static key only: no TPM key at all."""
    docs = documents()
    docs[2]["encryption"]["keys"] = [{"slot": 0, "static": {"passphrase": "u-data static"}}]
    return docs


def stalled(tpm: Swtpm, seconds: float | None) -> threading.Timer | None:
    """Stop swtpm (SIGSTOP): a TPM that does not answer; it answers again after ``seconds`` (None: never)."""
    os.kill(tpm.pid, signal.SIGSTOP)
    if seconds is None:
        return None
    timer = threading.Timer(seconds, os.kill, (tpm.pid, signal.SIGCONT))
    timer.start()
    return timer


def test_a_tpm_slow_at_start_makes_tpm_keys_wait_not_fail(node: Node) -> None:
    node.write_config(*documents())
    with Swtpm.start(node.workdir / "tpm") as tpm:
        uki = make_uki(node.workdir / "uki", tpm)
        initrd_left = boot_to_leave_initrd(tpm, uki)
        timer = stalled(tpm, 6.0)
        try:
            result = run_once(node, tpm, uki)
        finally:
            if timer is not None:
                timer.join()
        assert result.returncode == 0, result.stdout + result.stderr  # it failed with exit 6 ("waiting for")
        assert tpm.pcr_read(11) == extend(extend(initrd_left, b"enter-machined"), b"start-the-world")
    assert not node.leftovers()


def test_a_hung_tpm_neither_holds_up_the_exit_nor_is_extended_later(node: Node) -> None:
    node.write_config(*static_volumes())
    with Swtpm.start(node.workdir / "tpm") as tpm:
        uki = make_uki(node.workdir / "uki", tpm)
        initrd_left = boot_to_leave_initrd(tpm, uki)
        stalled(tpm, None)
        try:
            started = time.monotonic()
            result = run_once(node, tpm, uki)  # the process never exited before (a worker joined at exit)
            took = time.monotonic() - started
        finally:
            os.kill(tpm.pid, signal.SIGCONT)
        assert result.returncode == 0, result.stdout + result.stderr
        assert took < 60, took
        time.sleep(1)  # the TPM answers again: nothing of the dead run may extend PCR 11 now
        assert tpm.pcr_read(11) == initrd_left
    assert not node.leftovers()


def test_a_pcr_only_token_still_opens_without_a_uki(node: Node) -> None:
    """A TPM slot sealed to PCR 7 alone (volumedPcrOnly, or volumed before the signed policy) whose config no
    longer asks for it: no UKI on this node, so the window never opens; the token needs none and opens."""
    pcr_only = documents()
    pcr_only[2]["encryption"]["keys"] = [
        {"slot": 0, "tpm": {"options": {"pcrs": [7], "volumedPcrOnly": True}}}
    ]
    node.write_config(*pcr_only)
    with Swtpm.start(node.workdir / "tpm") as tpm:
        tpm.pcr_extend(7, FIRMWARE)  # no UKI: PCR 11 stays zero
        sealed = subprocess.run(
            [*node.run_argv(timeout=30.0), "--tpm-tcti", tpm.tcti],
            capture_output=True,
            text=True,
            check=False,
        )
        assert sealed.returncode == 0, sealed.stdout + sealed.stderr
        node.write_config(*documents())  # plain `tpm:` now: Talos' signed policy
        opened = subprocess.run(
            [*node.run_argv(timeout=30.0), "--tpm-tcti", tpm.tcti],
            capture_output=True,
            text=True,
            check=False,
        )
        output = opened.stdout + opened.stderr
        assert opened.returncode == 0, output  # it was exit 6: "PCR signing public key ... is missing"
        assert "u-data failed" not in output, output
    assert not node.leftovers()

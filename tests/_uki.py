"""A signed UKI's artefacts for TPM tests, made with openssl and the real systemd-measure, and PCR 11 measured
in a swtpm as systemd-stub and systemd-pcrphase would up to ``enter-machined``.

The UKI is four small section files and a PCR-signing RSA key; ``systemd-measure sign`` signs the PCR 11
policy of the phase path ``enter-initrd:leave-initrd:enter-machined``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tests._tools import require_tool
from volumed.keys.tpm import ENTER_MACHINED, TPMKeyProvider, measure_boot_phase

if TYPE_CHECKING:
    from pathlib import Path

    from tests._swtpm import Swtpm

MEASURE: Final = "/usr/lib/systemd/systemd-measure"
PHASES: Final = ("enter-initrd", "leave-initrd", ENTER_MACHINED)
SECTIONS: Final = {
    ".linux": b"kernel image",
    ".osrel": b"ID=talos\n",
    ".cmdline": b"console=ttyS0",
    ".initrd": b"rd",
}
"""UKI sections in systemd-stub's measuring order, plus .pcrpkey (the public key) measured last."""


@dataclass(frozen=True)
class UKI:
    """The artefacts of one signed UKI: key pair, section files, systemd-measure's signature JSON."""

    dir: Path
    public_key: Path
    signature: Path
    expected_pcr11: bytes

    def provider(self, tpm: Swtpm, pcrs: tuple[int, ...] = (7,), slot: int = 1) -> TPMKeyProvider:
        return TPMKeyProvider(
            slot, pcrs=pcrs, tcti=tpm.tcti, pcr_public_key=self.public_key, pcr_signature=self.signature
        )


def _section_args(workdir: Path) -> list[str]:
    return [f"--{name[1:]}={workdir / name[1:]}" for name in SECTIONS] + [f"--pcrpkey={workdir / 'pub.pem'}"]


def make_uki(workdir: Path, tpm: Swtpm) -> UKI:
    """A PCR-signing key and the signature JSON for the three phases in ``workdir`` (made here)."""
    openssl = require_tool("openssl")
    workdir.mkdir()
    subprocess.run([openssl, "genrsa", "-out", workdir / "priv.pem", "2048"], check=True, capture_output=True)
    subprocess.run(
        [openssl, "rsa", "-in", workdir / "priv.pem", "-pubout", "-out", workdir / "pub.pem"],
        check=True,
        capture_output=True,
    )
    for name, content in SECTIONS.items():
        (workdir / name[1:]).write_bytes(content)
    phase = "--phase=" + ":".join(PHASES)
    common = [*_section_args(workdir), "--bank=sha256", phase, "--json=short"]
    calculated = subprocess.run([MEASURE, "calculate", *common], check=True, capture_output=True, timeout=30)
    [entry] = json.loads(calculated.stdout)["sha256"]
    signed = subprocess.run(
        [
            MEASURE,
            "sign",
            *common,
            f"--private-key={workdir / 'priv.pem'}",
            f"--public-key={workdir / 'pub.pem'}",
            f"--tpm2-device={tpm.tcti}",  # systemd 252 computes the policy digest in a trial session
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    (workdir / "sig.json").write_bytes(signed.stdout)
    return UKI(workdir, workdir / "pub.pem", workdir / "sig.json", bytes.fromhex(entry["hash"]))


def stub_events(public_key: bytes) -> list[bytes]:
    """What systemd-stub measures into PCR 11, in order (each extended as its SHA-256): every section's name
    with its NUL, then its content; ``.pcrpkey`` (the PEM ``public_key``) last."""
    events: list[bytes] = []
    for name, content in [*SECTIONS.items(), (".pcrpkey", public_key)]:
        events += [name.encode() + b"\0", content]
    return events


def measure_uki_boot(tpm: Swtpm, uki: UKI) -> None:
    """PCR 11 as systemd-stub and systemd-pcrphase leave it when the machined phase begins."""
    for event in stub_events(uki.public_key.read_bytes()):
        tpm.pcr_extend(11, event)
    for word in PHASES:
        measure_boot_phase(word, tcti=tpm.tcti)
    assert tpm.pcr_read(11) == uki.expected_pcr11

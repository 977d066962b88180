"""TPM key latency: Talos' signed PCR 11 policy against volumed's PCR-only extension, on swtpm, one process.

A fresh swtpm; a PCR-signing key (openssl) and the signature of the phase path
``enter-initrd:leave-initrd:enter-machined`` made by systemd-measure; PCR 11 measured as systemd-stub and the
phases would; PCR 7 measured as firmware would. Then seal (``seal``) and unseal (``unseal``) under both
policies, interleaved, N runs each: the blocking library calls the provider runs in its worker thread.

Last line, JSON: {"seal_ms": {...}, "unseal_ms": {...}, "seal_ratio": ..., "unseal_ratio": ...}
(medians; ratio = signed / pcr-only).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/_swtpm.py, run from a checkout

from tests._swtpm import Swtpm
from volumed.keys import Passphrase
from volumed.keys.tpm import UKIFiles, measure_boot_phase, pcr_policy, seal, signed_pcr_policy, unseal

if TYPE_CHECKING:
    from volumed.keys.tpm import SealingPolicy

RUNS = 30
MEASURE = "/usr/lib/systemd/systemd-measure"
SECTIONS = {"linux": b"kernel image", "osrel": b"ID=talos\n", "cmdline": b"console=ttyS0", "initrd": b"rd"}
PHASES = ("enter-initrd", "leave-initrd", "enter-machined")


def make_uki(workdir: Path, tcti: str) -> UKIFiles:
    """Key pair and systemd-measure's signature JSON for small UKI sections."""
    subprocess.run(
        ["openssl", "genrsa", "-out", workdir / "priv.pem", "2048"], check=True, capture_output=True
    )
    subprocess.run(
        ["openssl", "rsa", "-in", workdir / "priv.pem", "-pubout", "-out", workdir / "pub.pem"],
        check=True,
        capture_output=True,
    )
    for name, content in SECTIONS.items():
        (workdir / name).write_bytes(content)
    sections = [f"--{name}={workdir / name}" for name in SECTIONS] + [f"--pcrpkey={workdir / 'pub.pem'}"]
    signed = subprocess.run(
        [MEASURE, "sign", *sections, "--bank=sha256", "--phase=" + ":".join(PHASES), "--json=short",
         f"--private-key={workdir / 'priv.pem'}", f"--public-key={workdir / 'pub.pem'}",
         f"--tpm2-device={tcti}"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (workdir / "sig.json").write_bytes(signed.stdout)
    return UKIFiles(public_key=workdir / "pub.pem", signature=workdir / "sig.json")


def measure_boot(tpm: Swtpm, files: UKIFiles) -> None:
    tpm.pcr_extend(7, b"firmware: SecureBoot=1 PK KEK db dbx")
    for name, content in [*SECTIONS.items(), ("pcrpkey", files.public_key.read_bytes())]:
        tpm.pcr_extend(11, b"." + name.encode() + b"\0")
        tpm.pcr_extend(11, content)
    for word in PHASES:
        measure_boot_phase(word, tcti=tpm.tcti)


def main() -> None:
    key = Passphrase(hashlib.sha256(b"bench").digest())
    with tempfile.TemporaryDirectory() as tmp, Swtpm.start(Path(tmp) / "tpm") as tpm:
        files = make_uki(Path(tmp), tpm.tcti)
        measure_boot(tpm, files)
        policies: dict[str, SealingPolicy] = {
            "signed": signed_pcr_policy([7], files),
            "pcr-only": pcr_policy([7]),
        }
        seal_ms: dict[str, list[float]] = {name: [] for name in policies}
        unseal_ms: dict[str, list[float]] = {name: [] for name in policies}
        for _ in range(RUNS):
            for name, policy in policies.items():
                started = time.perf_counter()
                sealed = seal(key, policy, tcti=tpm.tcti)
                seal_ms[name].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                assert unseal(sealed, tcti=tpm.tcti).reveal() == key.reveal()
                unseal_ms[name].append((time.perf_counter() - started) * 1000)
    medians = {
        "seal_ms": {name: round(statistics.median(values), 2) for name, values in seal_ms.items()},
        "unseal_ms": {name: round(statistics.median(values), 2) for name, values in unseal_ms.items()},
    }
    for what, values in medians.items():
        print(f"{what}: " + ", ".join(f"{name} {value} ms" for name, value in values.items()))
    result = {
        **medians,
        "seal_ratio": round(medians["seal_ms"]["signed"] / medians["seal_ms"]["pcr-only"], 2),
        "unseal_ratio": round(medians["unseal_ms"]["signed"] / medians["unseal_ms"]["pcr-only"], 2),
        "runs": RUNS,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

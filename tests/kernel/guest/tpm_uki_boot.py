"""One boot of a node that booted a signed UKI, in the guest, with `volumed run --once --backend dm` as its
volume subsystem and the TPM through ``/dev/tpmrm0``.

Before volumed starts, the guest does what systemd-stub and the initrd would: PCR 11 gets the UKI's
measurements and the phases ``enter-initrd``, ``leave-initrd`` (tpm2-tools), and the UKI's PCR-signing public
key and signature JSON (made on the host by ``systemd-measure sign``) are placed at
``/.extra/tpm2-pcr-public-key.pem`` and ``/.extra/tpm2-pcr-signature.json``, where volumed reads them by
default. volumed runs chrooted into a root that holds them (the guest's own root is the host's, read-only);
it extends ``enter-machined`` itself (``--tpm-boot-phases both``, the default), and ``start-the-world`` once
the volumes are open.

After the run: its ``--once`` table, key-slot lines and log warnings, PCR 11 (at start-the-world),
cryptsetup's ``luksDump`` and ``token export`` of STATE's header, whether cryptsetup accepts the static
passphrase for its slot, and that nothing is left mounted or mapped.

Params: ``config`` (machine config documents), ``node_uuid``, ``public_key`` (PEM), ``signature`` (JSON),
``enter_machined`` (hex: PCR 11 at enter-machined, from ``systemd-measure calculate``), ``extend_pcr7``
(measure a changed SecureBoot state first), ``device`` (STATE's partition), ``tpm_slot``, ``static_slot``,
``static``.
"""

from __future__ import annotations

import hashlib
import json
import stat
import time
from pathlib import Path
from typing import Any, Final

import yaml

from volumed.keys.tpm import DEFAULT_PCR_PUBLIC_KEY, DEFAULT_PCR_SIGNATURE, START_THE_WORLD, UKI_PCR
from volumed.resources import VolumePhase

from ._lifecycle import mapper_nodes, shutdown_state
from ._support import Scenario, run_scenario
from ._tpm import TCTI, after_phase, measure_uki_boot, read_pcr, require_tpm, uki_root
from ._volumes import dm_devices

NODE_ROOT: Final = Path("/run/node")
STATE_DIR: Final = Path("/run/volumed")
CONFIG: Final = Path("/run/volumed-config.yaml")
SETTLE_LIMIT: Final = 150.0
VOLUMED: Final = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "volumed"
COLUMNS: Final = ("ID", "PHASE", "LOCATION", "MOUNT", "FS", "ENCRYPTION", "SLOT", "ERROR / REASON")
"""The columns of `volumed run --once`'s table (cli/_run_loop.py: print_statuses)."""
SYNC_LINE: Final = " key slots not in line with the config: "
SYNC_WARNING: Final = "key slot sync incomplete"
"""The KeySlotSyncer's log event for a sync that left a slot not as configured."""


def once_table(output: str) -> dict[str, dict[str, str]]:
    """The rows of `--once`'s VolumeStatus table by volume id, cut at the header's column starts; the lines
    printed after the table (``ID phase: reason``, key-slot sync failures) are not rows."""
    lines = output.splitlines()
    index = next((i for i, line in enumerate(lines) if line.split()[:2] == list(COLUMNS[:2])), None)
    if index is None:
        return {}
    starts = [lines[index].index(column) for column in COLUMNS]
    phases = {phase.value for phase in VolumePhase}
    rows: dict[str, dict[str, str]] = {}
    for line in lines[index + 1 :]:
        cells = [line[start:end].strip() for start, end in zip(starts, [*starts[1:], None], strict=True)]
        if not cells[0] or " " in cells[0] or cells[1] not in phases:
            break
        rows[cells[0]] = dict(zip(COLUMNS, cells, strict=True))
    return rows


def run_volumed(s: Scenario, root: Path) -> None:
    """`volumed run --once` chrooted into ``root``, as a node's init would start it; it exits when settled
    and closes everything."""
    s.step(f"chroot {root} volumed run --once --backend dm (TPM files from their defaults in /.extra)")
    started = time.monotonic()
    result = s.run(
        "chroot", str(root), str(VOLUMED), "run", "--config", str(CONFIG), "--once", "--backend", "dm",
        "--root", str(NODE_ROOT), "--state-dir", str(STATE_DIR), "--node-uuid", s.params["node_uuid"],
        "--tpm-tcti", TCTI, "--retry-interval", "2", "--timeout", str(SETTLE_LIMIT),
        check=False,
    )  # fmt: skip
    s.record("run_seconds", round(time.monotonic() - started, 1))
    s.record("run_exit", result.returncode)
    s.record("run_stdout", result.stdout)
    table = once_table(result.stdout)
    s.record("table", table)
    s.record("sync_lines", [line for line in result.stdout.splitlines() if SYNC_LINE in line])
    # the log too: a sync after --once took its snapshot is not in the table, but the node would show it
    s.record("sync_warnings", [line for line in result.stderr.splitlines() if SYNC_WARNING in line])
    s.check(result.returncode == 0, f"volumed run --once exited {result.returncode}")
    state = table.get("STATE", {})
    s.note(f"STATE: {state.get('PHASE')}, opened by slot {state.get('SLOT')!r}")


def inspect_header(s: Scenario) -> None:
    """cryptsetup's view of STATE's header: key slots, tokens, the TPM slot's token; the static key's slot."""
    device, tpm_slot = s.params["device"], s.params["tpm_slot"]
    s.step(f"cryptsetup luksDump / token export --token-id {tpm_slot} {device}")
    s.run("cryptsetup", "luksDump", device)
    dump: dict[str, Any] = json.loads(s.run("cryptsetup", "luksDump", "--dump-json-metadata", device).stdout)
    s.record("keyslots", sorted(int(slot) for slot in dump["keyslots"]))
    s.record("tokens", {token: value["type"] for token, value in dump["tokens"].items()})
    exported = s.run("cryptsetup", "token", "export", "--token-id", str(tpm_slot), device, check=False)
    s.record("tpm_token", json.loads(exported.stdout) if exported.returncode == 0 else None)

    slot = s.params["static_slot"]
    s.step(f"cryptsetup open --test-passphrase --key-slot {slot}: the static key")
    result = s.run(
        "cryptsetup", "open", "--test-passphrase", "--key-slot", str(slot), "--key-file=-", device,
        stdin=s.params["static"].encode(), check=False,
    )  # fmt: skip
    s.record("static_accepted", result.returncode == 0)


def main(s: Scenario) -> None:
    s.step("a fresh kernel: device-mapper, the disk, the TPM, no dm device yet")
    s.check(stat.S_ISCHR(Path("/dev/mapper/control").stat().st_mode), "/dev/mapper/control is missing")
    s.check(dm_devices() == {} and mapper_nodes() == [], "dm devices or mapper nodes exist at boot")
    require_tpm(s)
    pcr7 = read_pcr(7)
    s.record("pcr7_at_boot", pcr7)
    if s.params.get("extend_pcr7"):
        s.step("extend PCR 7 first (a changed SecureBoot state)")
        event = hashlib.sha256(b"kernel tier: SecureBoot db changed").hexdigest()
        s.run("tpm2_pcrextend", "-T", TCTI, f"7:sha256={event}")
        s.check(read_pcr(7) != pcr7, "PCR 7 did not change")
        s.record("pcr7_extended", read_pcr(7))

    s.step("PCR 11 as systemd-stub and the initrd leave it: the UKI's sections, enter-initrd, leave-initrd")
    public_key = s.params["public_key"].encode()
    s.record("pcr11_before_run", measure_uki_boot(s, public_key, s.params["enter_machined"]))

    CONFIG.write_text(yaml.safe_dump_all(s.params["config"], sort_keys=False))
    STATE_DIR.mkdir(mode=0o700, exist_ok=True)
    s.step("the UKI's files at systemd-stub's places, in the root volumed runs in")
    files = {DEFAULT_PCR_PUBLIC_KEY: public_key, DEFAULT_PCR_SIGNATURE: s.params["signature"].encode()}
    with uki_root(s, files) as root:
        run_volumed(s, root)
        s.step("PCR 11 after the run")
        pcr11 = read_pcr(UKI_PCR)
        s.record("pcr11_after_run", pcr11)
        wanted = after_phase(s.params["enter_machined"], START_THE_WORLD)
        s.note(f"PCR 11 = {pcr11}")
        s.check(pcr11 == wanted, f"PCR 11 is {pcr11}, not {wanted} (enter-machined, then start-the-world)")
        s.record("shutdown", shutdown_state(s, root / NODE_ROOT.relative_to("/")))
    inspect_header(s)


if __name__ == "__main__":
    run_scenario(main)

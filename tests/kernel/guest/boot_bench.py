"""The guest side of ``bench/boot.py --guest``: the boot of 10 encrypted volumes by `volumed run --once
--backend dm` against the same volumes opened by a serial loop of `cryptsetup open` (what systemd-cryptsetup
does, one unit after the other), on real dm-crypt, same KDF parameters, same guest.

Params (from the host): ``config`` (the config's YAML), ``node_uuid``, ``volumes`` (``id``, ``partname``: the
GPT partition name that finds its device, ``key``: the passphrase of key slot 0, which opens it), ``kdf``
(``memory_kib``, ``iterations``, ``parallel``: what every key slot must have), ``runs``, ``settle_limit``.

1. First boot: `volumed run --once` formats every volume (LUKS2, two key slots, the config's pinned KDF) and
   makes its filesystem; not measured. cryptsetup's ``luksDump`` then checks each header: key slots 0 and 1,
   argon2id with exactly the pinned parameters.
2. ``runs`` rounds, the order alternating (volumed first in even rounds): `volumed run --once` (through
   ``_timed_volumed``: the same CLI with its KDF runs timed) from spawn to exit, which unlocks, activates,
   probes, mounts, prints its table, unmounts and closes; then the serial loop: ``cryptsetup open --key-file``
   for each volume in turn, then ``cryptsetup close`` for each. After each, no dm device may be left.

Nothing is printed while a run is measured (the serial console is slow under emulation): the output of each
run is shown after it. Results: ``rounds`` (every run's numbers) and ``first_boot``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

from ._lifecycle import mounts_under
from ._support import Scenario, run_scenario
from ._volumes import dm_devices

BENCH: Final = Path("/run/boot-bench")
CONFIG: Final = BENCH / "config.yaml"
ROOT: Final = BENCH / "root"
STATE_DIR: Final = Path("/run/volumed")
KEYS: Final = BENCH / "keys"
RUN_LIMIT: Final = 1200.0
FIRST_BOOT_LIMIT: Final = 900.0
"""--timeout of the first boot: it runs 2 KDFs per volume, one at a time on 2 CPUs (the KDF limiter), and a
volume whose format waits past the 60 s encryption step limit is retried (measured: with --timeout 120 nine of
ten formats timed out and the run failed)."""
FIRST_BOOT_ATTEMPTS: Final = 2


def partitions() -> dict[str, str]:
    """GPT partition name -> device node, from sysfs (``PARTNAME`` in each partition's uevent; no udev)."""
    found: dict[str, str] = {}
    for entry in sorted(Path("/sys/class/block").iterdir()):
        uevent = entry / "uevent"
        if not (entry / "partition").exists() or not uevent.exists():
            continue
        fields = dict(line.split("=", 1) for line in uevent.read_text().splitlines() if "=" in line)
        if "PARTNAME" in fields:
            found[fields["PARTNAME"]] = f"/dev/{entry.name}"
    return found


def union_length(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by at least one interval."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def max_concurrency(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at one instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(stop, -1) for _, stop in intervals])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def volumed_argv(s: Scenario, out: Path, timeout: float) -> list[str]:
    return [
        sys.executable, "-m", "tests.kernel.guest._timed_volumed", str(out),
        "run", "--config", str(CONFIG), "--once", "--backend", "dm",
        "--root", str(ROOT), "--state-dir", str(STATE_DIR), "--node-uuid", s.params["node_uuid"],
        "--tpm-boot-phases", "off", "--retry-interval", "2", "--timeout", str(timeout),
    ]  # fmt: skip


def volumed_boot(s: Scenario, tag: str, salts: dict[str, str], timeout: float) -> dict[str, Any]:
    """One `volumed run --once`, timed from spawn to exit; its output is printed after it ended.

    A run that does not end with every volume ready (exit status not 0) is returned with ``failed`` (why),
    not raised: the other rounds still run, and the report says which failed and how.
    """
    out = BENCH / f"kdf-{tag}.json"
    out.unlink(missing_ok=True)
    lines: list[tuple[float, str]] = []
    table_at = None
    mounted: list[float] = []
    spawned = time.monotonic()
    process = subprocess.Popen(
        volumed_argv(s, out, timeout),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    for raw in process.stdout:
        now = time.monotonic()
        line = raw.decode(errors="replace").rstrip()
        lines.append((now - spawned, line))
        if table_at is None and line.startswith("ID "):
            table_at = now
        if "] mounted " in line:
            mounted.append(now)
    code = process.wait(timeout=RUN_LIMIT)
    exited = time.monotonic()
    process.stdout.close()
    for offset, line in lines:
        s.note(f"[+{offset:6.2f} s] {line}")
    left = {"dm_devices": sorted(dm_devices()), "mounts": mounts_under(ROOT)}
    s.check(not any(left.values()), f"after volumed run --once: {left}")
    if code != 0 or table_at is None:
        reasons = [line for _, line in lines if " failed: " in line or " waiting: " in line]
        return {"failed": f"exit {code}: " + "; ".join(reasons), "boot_s": exited - spawned}
    timed = json.loads(out.read_text())
    runs = [(start, end) for start, end, _ in timed["kdf_runs"]]
    per_volume: dict[str, int] = {}
    for _, _, salt in timed["kdf_runs"]:
        owner = salts.get(salt, "?")
        per_volume[owner] = per_volume.get(owner, 0) + 1
    boot_s = exited - spawned
    kdf_s = union_length(runs)
    first_kdf = min((start for start, _ in runs), default=exited)
    last_kdf = max((end for _, end in runs), default=spawned)
    return {
        "boot_s": boot_s,
        "settled_s": table_at - spawned,
        "last_mounted_s": (max(mounted) - spawned) if mounted else None,
        "mounted_lines": len(mounted),
        "interpreter_s": timed["started"] - spawned,
        "cli_imported_s": timed["cli_imported"] - spawned,
        "first_kdf_s": first_kdf - spawned,
        "last_kdf_end_s": last_kdf - spawned,
        "kdf_s": kdf_s,
        "kdf_between_s": max(0.0, last_kdf - first_kdf) - kdf_s,
        "kdf_cpu_s": sum(end - start for start, end in runs),
        "kdf_runs": len(runs),
        "kdf_runs_per_volume": per_volume,
        "kdf_concurrency": max_concurrency(runs),
        "teardown_s": exited - table_at,
        "overhead_s": boot_s - kdf_s,
    }


def cryptsetup_serial(s: Scenario, volumes: list[dict[str, str]]) -> dict[str, Any]:
    """The serial script: ``cryptsetup open`` for each volume in turn, then ``cryptsetup close`` for each."""
    opened: list[str] = []
    opens: list[float] = []
    closes: list[float] = []
    failure = ""
    started = time.monotonic()
    try:
        for volume in volumes:
            name = f"bench-{volume['id']}"
            t0 = time.monotonic()
            result = subprocess.run(
                ["cryptsetup", "open", "--type", "luks2", "--key-file", str(KEYS / volume["id"]),
                 volume["device"], name],
                capture_output=True, check=False,
            )  # fmt: skip
            opens.append(time.monotonic() - t0)
            if result.returncode != 0:
                failure = f"cryptsetup open {volume['device']} exited {result.returncode}: {result.stderr!r}"
                break
            opened.append(name)
        all_open = time.monotonic()
    finally:
        for name in reversed(opened):
            t0 = time.monotonic()
            result = subprocess.run(["cryptsetup", "close", name], capture_output=True, check=False)
            closes.append(time.monotonic() - t0)
            if result.returncode != 0 and not failure:
                failure = f"cryptsetup close {name} exited {result.returncode}: {result.stderr!r}"
    ended = time.monotonic()
    s.check(not failure, failure)
    s.note(
        f"cryptsetup: {len(opens)} opens in {all_open - started:.2f} s "
        f"({', '.join(f'{t:.2f}' for t in opens)}), {len(closes)} closes in {ended - all_open:.2f} s"
    )
    s.check(dm_devices() == {}, f"dm devices left after cryptsetup close: {dm_devices()}")
    return {
        "serial_s": ended - started,
        "opens_s": all_open - started,
        "closes_s": ended - all_open,
        "open_each_s": opens,
    }


def check_headers(s: Scenario, volumes: list[dict[str, str]]) -> dict[str, str]:
    """Every header has key slots 0 and 1, argon2id with the pinned parameters; returns salt -> volume id."""
    wanted = {
        "type": "argon2id",
        "memory": s.params["kdf"]["memory_kib"],
        "time": s.params["kdf"]["iterations"],
        "cpus": s.params["kdf"]["parallel"],
    }
    salts: dict[str, str] = {}
    for volume in volumes:
        dump = json.loads(
            subprocess.run(
                ["cryptsetup", "luksDump", "--dump-json-metadata", volume["device"]],
                capture_output=True,
                check=True,
            ).stdout
        )
        slots = dump["keyslots"]
        s.check(sorted(slots) == ["0", "1"], f"{volume['id']}: key slots {sorted(slots)}, not 0 and 1")
        for number, slot in slots.items():
            kdf = {key: slot["kdf"].get(key) for key in wanted}
            s.check(kdf == wanted, f"{volume['id']} key slot {number}: KDF {kdf}, pinned {wanted}")
            salts[slot["kdf"]["salt"]] = volume["id"]
    s.note(f"{len(volumes)} headers: key slots 0 and 1, KDF {wanted} (cryptsetup luksDump)")
    return salts


def normalize_salts(salts: dict[str, str]) -> dict[str, str]:
    """luksDump's base64 salts in the form ``_timed_volumed`` writes (standard base64 of the bytes)."""
    return {base64.b64encode(base64.b64decode(salt)).decode(): owner for salt, owner in salts.items()}


def main(s: Scenario) -> None:
    BENCH.mkdir(parents=True, exist_ok=True)
    ROOT.mkdir(parents=True, exist_ok=True)
    CONFIG.write_text(s.params["config"])
    found = partitions()
    volumes = []
    for volume in s.params["volumes"]:
        s.check(volume["partname"] in found, f"no partition named {volume['partname']!r}: {sorted(found)}")
        volumes.append({"id": volume["id"], "device": found[volume["partname"]], "key": volume["key"]})
    s.note("volumes: " + ", ".join(f"{v['id']}={v['device']}" for v in volumes))
    s.record("cpus", os.cpu_count())

    s.step("first boot: volumed run --once formats every volume (not measured)")
    started = time.monotonic()
    for attempt in range(1, FIRST_BOOT_ATTEMPTS + 1):
        first = volumed_boot(s, f"first-{attempt}", {}, FIRST_BOOT_LIMIT)
        if "failed" not in first:
            break
        s.note(f"first boot attempt {attempt} failed: {first['failed']}")
    s.check("failed" not in first, f"the first boot failed {FIRST_BOOT_ATTEMPTS} times: {first}")
    s.record(
        "first_boot",
        {"seconds": round(time.monotonic() - started, 2), "attempts": attempt, "kdf_runs": first["kdf_runs"]},
    )

    s.step("cryptsetup luksDump: two key slots per volume, the pinned KDF; key files for cryptsetup")
    salts = normalize_salts(check_headers(s, volumes))
    KEYS.mkdir(mode=0o700, exist_ok=True)
    for volume in volumes:
        path = KEYS / volume["id"]
        path.touch(mode=0o600)
        path.write_bytes(volume["key"].encode())

    rounds: list[dict[str, Any]] = []
    for number in range(s.params["runs"]):
        volumed_first = number % 2 == 0
        s.step(
            f"round {number + 1}: "
            + ("volumed, then cryptsetup" if volumed_first else "cryptsetup, then volumed")
        )
        result: dict[str, Any] = {"volumed_first": volumed_first}
        for which in ("volumed", "cryptsetup") if volumed_first else ("cryptsetup", "volumed"):
            if which == "volumed":
                result["volumed"] = volumed_boot(s, f"round-{number + 1}", salts, s.params["settle_limit"])
            else:
                result["cryptsetup"] = cryptsetup_serial(s, volumes)
        v, c = result["volumed"], result["cryptsetup"]
        s.note(
            f"volumed {v['boot_s']:.2f} s (KDF critical path {v.get('kdf_s', 0):.2f} s"
            f"{', FAILED: ' + v['failed'] if 'failed' in v else ''}), cryptsetup serial {c['serial_s']:.2f} s"
        )
        rounds.append(result)
        s.record("rounds", rounds)


if __name__ == "__main__":
    run_scenario(main)

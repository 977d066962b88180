"""dm-crypt flags and resize, in the guest: ``DmActivator`` activates a volume with the flags of a config's
perf ``options`` and ``allowDiscards`` (``activation_flags``), which the kernel's table and ``cryptsetup
status`` show; then the mapping, made smaller than its segment as if the partition grew after activation,
is resized live: ``blockdev --getsize64`` and ``dmsetup table`` show the new size, the flags and the logon key
stay, and the file written before reads back.

Params: ``device`` (a partition, e.g. /dev/vda2), ``passphrase``, ``name``, ``perf_options`` (list).
"""

from __future__ import annotations

from dataclasses import replace

from volumed.controllers.block._encryption import activation_flags
from volumed.resources import EncryptionConfigSpec
from volumed.storage.activation import ActivationError, DmActivator
from volumed.storage.luks2 import Luks2Volume

from ._support import Scenario, run_scenario
from ._volumes import KDF, cryptsetup_status, data_segment, dm_devices, dm_table, read_file, write_file

MiB = 1 << 20


def main(s: Scenario) -> None:
    device, name = s.params["device"], s.params["name"]
    passphrase = s.params["passphrase"].encode()
    config = EncryptionConfigSpec(perf_options=tuple(s.params["perf_options"]), allow_discards=True)
    flags = activation_flags(config)
    s.record("flags", list(flags))

    s.step(f"Luks2Volume.format {device} and unlock it")
    with Luks2Volume.format(device, passphrase, kdf=KDF, sector_size=4096, label="DATA"):
        pass
    with Luks2Volume.open(device) as volume:
        key = volume.unlock(passphrase)
        full = data_segment(volume, device)
    assert full.size is not None
    small = replace(full, size=16 * MiB)
    s.record("full_size", full.size)

    s.step(f"DmActivator.activate {name} with the config's flags, 16 MiB of the segment")
    activator = DmActivator()
    mapped = activator.activate(name, small, key.material, flags=flags)
    table = dm_table(s, name)
    s.record("table_before", table)
    s.record("status_before", cryptsetup_status(s, name))
    size = int(s.run("blockdev", "--getsize64", mapped).stdout)
    s.record("size_before", size)
    s.run("mkfs.ext4", "-q", mapped)
    write_file(s, mapped, "ext4", "resize", "before.txt", "written before the resize\n")

    s.step("resize to the whole segment, live")
    resized = activator.resize(name, full, key.material)
    s.record("resized", resized)
    s.record("table_after", dm_table(s, name))
    s.record("size_after", int(s.run("blockdev", "--getsize64", mapped).stdout))
    s.record("status_size_after", activator.status(name).size)
    s.record("again", activator.resize(name, full, key.material))
    try:
        activator.resize(name, small, key.material)
    except ActivationError as exc:
        s.record("shrink", str(exc))
    s.record("table_after_refusals", dm_table(s, name))
    s.record("file_after", read_file(s, mapped, "ext4", "resize", "before.txt"))

    s.step("deactivate")
    activator.deactivate(name)
    s.check(dm_devices() == {}, f"dm devices left after deactivate: {dm_devices()}")


if __name__ == "__main__":
    run_scenario(main)

"""Second boot on the same disk, in the guest: the volume our library formatted on the first boot opens again
with the passphrase (one KDF run) and ``DmActivator``, and the file written then is there.

Params: ``device``, ``passphrase``, ``name``, ``file``, ``text`` (as on the first boot), ``fstype``.
"""

from __future__ import annotations

import time

from volumed.storage.activation import DmActivator
from volumed.storage.luks2 import Luks2Volume

from ._support import Scenario, run_scenario
from ._volumes import data_segment, dm_devices, note_stale_node, read_file, write_file


def main(s: Scenario) -> None:
    device, name, fstype = s.params["device"], s.params["name"], s.params["fstype"]

    s.step("a fresh kernel: no dm device exists yet")
    s.check(dm_devices() == {}, f"dm devices exist at boot: {dm_devices()}")

    s.step(f"open {device} with Luks2Volume and the passphrase (one KDF run)")
    started = time.monotonic()
    with Luks2Volume.open(device) as volume:
        key = volume.unlock(s.params["passphrase"].encode())
        segment = data_segment(volume, device)
        s.check(volume.label == "EPHEMERAL", f"label {volume.label!r}")
    s.record("unlock_seconds", round(time.monotonic() - started, 2))

    s.step(f"DmActivator.activate {name}, read the first boot's file, write another")
    activator = DmActivator()
    mapped = activator.activate(name, segment, key.material)
    text = read_file(s, mapped, fstype, "ephemeral", s.params["file"])
    s.check(text == s.params["text"], f"{s.params['file']} reads {text!r} on the second boot")
    write_file(s, mapped, fstype, "ephemeral", "second-boot.txt", "second boot\n")
    text = read_file(s, mapped, fstype, "ephemeral", "second-boot.txt")
    s.check(text == "second boot\n", f"second-boot.txt reads {text!r}")

    s.step("DmActivator.deactivate: nothing left")
    activator.deactivate(name)
    s.check(dm_devices() == {}, f"dm devices left after deactivate: {dm_devices()}")
    note_stale_node(s, mapped)


if __name__ == "__main__":
    run_scenario(main)

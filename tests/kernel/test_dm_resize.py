"""dm-crypt flags from the config and a live resize against the real kernel (scenario
``tests/kernel/guest/dm_resize_flags.py``): the table the kernel reports carries ``allow_discards`` and the
perf flags, and a resized mapping has the new size with the same flags and key."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.kernel._guest import KernelMachine

MiB = 1 << 20
PARAMS = {
    "device": "/dev/vda2",
    "passphrase": "kernel tier: resize passphrase",
    "name": "luks2-DATA",
    "perf_options": ["no_read_workqueue", "no_write_workqueue", "same_cpu_crypt"],
}
FLAGS = "5 allow_discards same_cpu_crypt no_read_workqueue no_write_workqueue sector_size:4096"


def test_config_flags_reach_the_table_and_a_resize_keeps_them(machine: Callable[..., KernelMachine]) -> None:
    results = machine().boot("dm_resize_flags", PARAMS).check().results
    before, after = results["table_before"], results["table_after"]
    assert before["options"] == FLAGS
    assert before["key"] == "logon:volumed:luks2-DATA"
    assert before["sectors"] == str(16 * MiB // 512)
    assert results["size_before"] == 16 * MiB
    flags_line = results["status_before"]["flags"]
    assert set(flags_line.split()) == {
        "discards",
        "same_cpu_crypt",
        "no_read_workqueue",
        "no_write_workqueue",
    }

    full = results["full_size"]
    assert full > 16 * MiB
    assert results["resized"] == results["again"] == results["status_size_after"] == full
    assert results["size_after"] == full
    assert after["sectors"] == str(full // 512)
    assert after["options"] == FLAGS
    assert after["key"] == "logon:volumed:luks2-DATA"
    assert {k: v for k, v in after.items() if k != "sectors"} == {
        k: v for k, v in before.items() if k != "sectors"
    }
    assert "smaller than the" in results["shrink"]
    assert results["table_after_refusals"] == after
    assert results["file_after"] == "written before the resize\n"

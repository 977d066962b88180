"""Talos' order and waves (`volumes.CompareVolumeConfigs`, `volume_manager.go`), and what `--once` makes of a
volume that waits: an unlimited maxSize is sorted last (it was first, and took the space the others needed);
only making a partition waits, for the volumes with provisioning before it that are not ready; a volume
waiting behind a failed or missing one is settled (`--once` waited for its 10-minute timeout)."""

from __future__ import annotations

import pytest

from volumed.cli._run_loop import once_exit_code
from volumed.cli.run import EXIT_VOLUME_FAILED, EXIT_VOLUME_MISSING
from volumed.controllers import Convergence
from volumed.controllers.block._formatter import _Work, processing_order, provisioning_blockers
from volumed.resources import ProvisioningConfigSpec, VolumeConfigSpec, VolumePhase, VolumeStatusSpec

MIB = 1 << 20


def work(volume_id: str, *, wave: int | None = None, grow: bool = False, max_size: int = 0) -> _Work:
    provisioning = None if wave is None else ProvisioningConfigSpec(wave=wave, grow=grow, max_size=max_size)
    return _Work(volume_id, VolumeConfigSpec(partition_label=volume_id, provisioning=provisioning), None)


def status(phase: VolumePhase, *waiting_for: str) -> VolumeStatusSpec:
    return VolumeStatusSpec(phase=phase, waiting_for=waiting_for)


def test_the_order_is_talos_order_with_unlimited_max_size_last() -> None:
    volumes = [
        work("u-grow", wave=0, grow=True, max_size=10 * MIB),
        work("u-unlimited", wave=0),
        work("u-b-small", wave=0, max_size=100 * MIB),
        work("u-a-small", wave=0, max_size=100 * MIB),
        work("u-large", wave=0, max_size=500 * MIB),
        work("EPHEMERAL", wave=-1, grow=True),
        work("STATE", wave=-1, max_size=100 * MIB),
        work("u-located"),
    ]
    assert [v.volume_id for v in sorted(volumes, key=processing_order)] == [
        "u-located",  # no provisioning first
        "STATE",  # then by wave; non-growing before growing
        "EPHEMERAL",
        "u-a-small",  # smaller maxSize first, then id
        "u-b-small",
        "u-large",
        "u-unlimited",  # maxSize 0 (unlimited) after every limited one
        "u-grow",
    ]


ORDERED = [
    work("u-located"),
    work("STATE", wave=-1, max_size=100 * MIB),
    work("EPHEMERAL", wave=-1, grow=True),
    work("u-a", wave=0, max_size=64 * MIB),
    work("u-b", wave=0, max_size=64 * MIB),
]


def blockers(index: int, **phases: VolumePhase) -> tuple[str, ...]:
    return provisioning_blockers(ORDERED, index, {v: status(p) for v, p in phases.items()})


def test_only_volumes_with_provisioning_before_it_and_not_ready_hold_provisioning_back() -> None:
    ready = VolumePhase.READY
    # a volume without provisioning holds nothing back, failed or not
    assert blockers(1, **{"u-located": VolumePhase.FAILED}) == ()
    # a later wave waits for every earlier-wave volume with provisioning that is not ready yet
    assert blockers(3, STATE=VolumePhase.FAILED, EPHEMERAL=ready) == ("STATE",)
    assert blockers(3, STATE=ready, EPHEMERAL=VolumePhase.PREPARED) == ("EPHEMERAL",)
    assert blockers(3, STATE=ready, EPHEMERAL=ready) == ()
    # as in Talos' loop, a volume before it in its own wave counts too (partitions are made in order)
    assert blockers(4, STATE=ready, EPHEMERAL=ready, **{"u-a": VolumePhase.WAITING}) == ("u-a",)
    assert blockers(2, STATE=VolumePhase.MISSING) == ("STATE",)
    # no status yet: not ready
    assert blockers(4) == ("STATE", "EPHEMERAL", "u-a")


def snapshot(**statuses: VolumeStatusSpec) -> Convergence:
    return Convergence(statuses=statuses, configured=set(statuses), mounted=set(), wanted_mounts=set())


def test_a_volume_waiting_behind_a_failed_one_is_settled_and_blocked() -> None:
    converged = snapshot(
        STATE=status(VolumePhase.FAILED),
        locked=status(VolumePhase.WAITING, "STATE"),
        after=status(VolumePhase.WAITING, "locked"),
        data=status(VolumePhase.READY),
    )
    assert converged.blocked == {"locked": "STATE failed", "after": "STATE failed"}
    assert converged.settled
    assert not converged.ok
    assert once_exit_code(converged) == EXIT_VOLUME_FAILED


@pytest.mark.parametrize(
    "other",
    [
        status(VolumePhase.WAITING),  # waits for discovery or the kernel: may still come
        status(VolumePhase.PREPARED),  # on its way (its mkfs runs)
        status(VolumePhase.READY),  # ready but not mounted yet: STATE's salt comes once it is
    ],
    ids=["waiting", "prepared", "ready"],
)
def test_a_volume_waiting_for_one_that_may_still_come_is_not_settled(other: VolumeStatusSpec) -> None:
    converged = snapshot(STATE=other, locked=status(VolumePhase.WAITING, "STATE"))
    assert converged.blocked == {}
    assert not converged.settled
    assert once_exit_code(converged) == 1


def test_missing_or_not_configured_is_the_missing_code() -> None:
    missing = snapshot(u=status(VolumePhase.MISSING), v=status(VolumePhase.WAITING, "u"))
    assert (missing.settled, missing.blocked) == (True, {"v": "u missing"})
    assert once_exit_code(missing) == EXIT_VOLUME_MISSING
    # keys locked to a STATE that no config names: its salt never comes
    unconfigured = snapshot(locked=status(VolumePhase.WAITING, "STATE"))
    assert unconfigured.blocked == {"locked": "STATE not configured"}
    assert once_exit_code(unconfigured) == EXIT_VOLUME_MISSING


def test_every_volume_ready_is_0_and_a_wait_without_a_volume_is_not_settled() -> None:
    assert once_exit_code(snapshot(a=status(VolumePhase.READY))) == 0
    assert not snapshot(a=status(VolumePhase.WAITING)).settled


def test_a_status_missing_for_a_configured_volume_is_not_settled() -> None:
    converged = Convergence(
        statuses={"a": status(VolumePhase.READY), "x": status(VolumePhase.READY)},
        configured={"a", "b"},
        mounted=set(),
        wanted_mounts=set(),
    )
    assert not converged.settled  # raised KeyError: the statuses were not a strict subset


def test_within_a_wave_an_earlier_volume_holds_back_only_until_it_has_its_partition_or_failed() -> None:
    """Talos holds back every later volume of the wave behind one that is not ready; volumed only keeps the
    order in which partitions are made (a user volume whose selector fails held back the others for good)."""
    ready = VolumePhase.READY
    located = VolumeStatusSpec(phase=VolumePhase.PREPARED, location="/dev/sdb1")
    statuses = {"STATE": status(ready), "EPHEMERAL": status(ready), "u-a": status(VolumePhase.FAILED)}
    assert provisioning_blockers(ORDERED, 4, statuses) == ()
    assert provisioning_blockers(ORDERED, 4, {**statuses, "u-a": located}) == ()
    assert provisioning_blockers(ORDERED, 2, {"STATE": located}) == ()
    # an earlier wave still holds it back until ready, located or failed
    assert provisioning_blockers(ORDERED, 3, {"STATE": located, "EPHEMERAL": status(ready)}) == ("STATE",)

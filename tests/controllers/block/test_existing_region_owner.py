"""`region_owner`: which volume has the bytes an existing volume's selector matches (review22 F1, F5)."""

from __future__ import annotations

from volumed.controllers.block._existing import region_owner
from volumed.resources import DiscoveredVolumeSpec, VolumePhase, VolumeStatusSpec

MIB = 1024 * 1024
IMAGE = "/images/data.img"


def partition(index: int, offset: int, size: int = 32 * MIB) -> DiscoveredVolumeSpec:
    return DiscoveredVolumeSpec(
        dev_path=IMAGE, offset=offset, size=size, partition_index=index, parent=IMAGE, name="ext4"
    )


P1, P2 = partition(1, 1 * MIB), partition(2, 33 * MIB)


def ready_on(volume: DiscoveredVolumeSpec) -> VolumeStatusSpec:
    return VolumeStatusSpec(
        phase=VolumePhase.READY, location=volume.dev_path, offset=volume.offset, size=volume.size
    )


def test_the_first_in_the_order_has_a_region_none_is_ready_on() -> None:
    located = [("e-a", P1), ("e-b", P1)]
    assert region_owner("e-a", P1, {}, located) is None
    assert region_owner("e-b", P1, {}, located) == "e-a"


def test_a_volume_ready_there_keeps_it_whatever_the_order() -> None:
    located = [("e-a", P1), ("e-z", P1)]
    statuses = {"e-z": ready_on(P1)}
    assert region_owner("e-a", P1, statuses, located) == "e-z"
    assert region_owner("e-z", P1, statuses, located) is None


def test_any_volume_ready_on_overlapping_bytes_counts() -> None:
    whole = partition(0, 0, 128 * MIB)  # say a disk volume on the whole image
    assert region_owner("e-a", P2, {"u-whole": ready_on(whole)}, [("e-a", P2)]) == "u-whole"
    elsewhere = DiscoveredVolumeSpec(dev_path="/images/other.img", offset=P2.offset, size=P2.size)
    assert region_owner("e-a", P2, {"u-other": ready_on(elsewhere)}, [("e-a", P2)]) is None


def test_a_volume_kept_on_its_partition_does_not_claim_what_its_selector_now_matches() -> None:
    """e-x is ready on P1 (kept there until the next start) and its selector now matches P2: P2 is free."""
    statuses = {"e-x": ready_on(P1)}
    located = [("e-x", P2), ("e-y", P2)]
    assert region_owner("e-y", P2, statuses, located) is None
    assert region_owner("e-y", P1, statuses, [("e-y", P1)]) == "e-x"

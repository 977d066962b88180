"""PCR lists, the TPML_PCR_SELECTION layout and the refusal of unmeasured PCR values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volumed.keys.tpm import PCRValueError, check_pcr_values, normalize_pcrs
from volumed.keys.tpm._connection import _selected_pcrs
from volumed.keys.tpm._pcr import pcr_composite_digest, pcr_selection_bytes


def test_pcrs_are_sorted() -> None:
    assert normalize_pcrs([11, 0, 7]) == (0, 7, 11)


@pytest.mark.parametrize(
    ("pcrs", "message"),
    [
        ([], "at least one PCR"),
        ([24], "PCR 24 is out of range 0..23"),
        ([-1], "PCR -1 is out of range"),
        ([7, 7], "PCR 7 is listed twice"),
        (["7"], "PCR '7' is not an integer"),
        ([True], "PCR True is not an integer"),
    ],
)
def test_bad_pcr_lists_are_named(pcrs: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_pcrs(pcrs)  # type: ignore[arg-type]


def test_selection_layout_for_pcr_7() -> None:
    # count=1, hash=TPM_ALG_SHA256 (0x000B), sizeofSelect=3, bitmap with bit 7 of byte 0 set
    assert pcr_selection_bytes([7]).hex() == "00000001000b03800000"


def test_selection_layout_for_pcrs_0_11_23() -> None:
    assert pcr_selection_bytes([0, 11, 23]).hex() == "00000001000b03010880"


@given(st.sets(st.integers(min_value=0, max_value=23), min_size=1))
def test_selection_round_trips_through_the_parser(pcrs: set[int]) -> None:
    assert _selected_pcrs(pcr_selection_bytes(pcrs)) == sorted(pcrs)


def test_composite_digest_concatenates_in_pcr_order() -> None:
    import hashlib

    values = {7: b"\x07" * 32, 0: b"\x00" * 31 + b"\x01"}
    assert pcr_composite_digest(values) == hashlib.sha256(values[0] + values[7]).digest()


def test_measured_values_pass() -> None:
    check_pcr_values({7: bytes(range(32))})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (bytes(32), r"PCR 7 \(sha256\) is populated with all zeroes"),
        (b"\xff" * 32, r"PCR 7 \(sha256\) is populated with all 0xFF"),
        (b"\x01" * 20, "PCR 7 .*20-byte value"),
    ],
)
def test_unmeasured_values_are_refused(value: bytes, message: str) -> None:
    with pytest.raises(PCRValueError, match=message):
        check_pcr_values({0: b"\x01" * 32, 7: value})

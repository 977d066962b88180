"""Hostile KDF, area and digest parameters in a header: a clear LUKS2 error naming the field, before any KDF
runs, and not one byte written.

They used to reach argon2/pbkdf2 unchecked: pbkdf2 iterations >= 2^32 made `cryptography` panic (a
BaseException that ended `volumed run`), argon2 memory 2^31 / 2^40 and area.key_size 2^33 raised
ValueError/OverflowError/MemoryError that no caller expected.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.storage.luks2._luks2_helpers import OTHER, PASS, format_small
from volumed.storage.luks2 import (
    InvalidHeaderError,
    InvalidMetadataError,
    KdfSettings,
    KeyslotNotActiveError,
    Luks2Error,
    Luks2Volume,
    NoKeyError,
)
from volumed.storage.luks2 import _kdf as kdf_module
from volumed.storage.luks2._device import Region
from volumed.storage.luks2._header_io import load, write_copies
from volumed.storage.luks2.lowlevel import Argon2Kdf, Pbkdf2Kdf, argon2_raw, derive_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    Edit = Callable[[dict[str, Any]], None]

#: An argon2id slot that costs next to nothing (64 KiB, one pass), so the fuzzer can afford to open it.
ARGON2_TINY = KdfSettings(type="argon2id", iterations=1, memory_kib=64, parallel=1)
UINT32_MAX = 2**32 - 1


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Slot 0: pbkdf2 (PASS); slot 1: argon2id (OTHER)."""
    path = tmp_path_factory.mktemp("hostile") / "template.img"
    with format_small(path) as volume:
        volume.add_key(OTHER, passphrase=PASS, kdf=ARGON2_TINY)
    return path


def rewrite(path: Path, edit: Edit, *, copies: tuple[int, ...] = (0, 1)) -> None:
    """Apply ``edit`` to the JSON metadata and store it in ``copies`` with valid checksums."""
    with open(path, "r+b") as f:
        region = Region(f)
        state = load(region)
        top = json.loads(state.json_text)
        edit(top)
        text = json.dumps(top, separators=(",", ":")).encode()
        size = state.binary.json_size
        assert len(text) < size
        write_copies(region, state.binary, text + bytes(size - len(text)), state.salts, copies=copies)


def setter(*where: str, value: object) -> Edit:
    def edit(top: dict[str, Any]) -> None:
        obj = top
        for key in where[:-1]:
            obj = obj[key]
        obj[where[-1]] = value

    return edit


def try_everything(path: Path) -> None:
    """Open the volume and unlock every way a caller would; raise what that raises."""
    with Luks2Volume.open(path) as volume:
        for passphrase, slot in ((PASS, 0), (OTHER, 1), (PASS, None), (OTHER, None)):
            with contextlib.suppress(NoKeyError):  # each slot on its own: one must not hide the others
                volume.unlock(passphrase, keyslot=slot)


@pytest.fixture
def image(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "hostile.img"
    shutil.copyfile(template, path)
    return path


HEADER_ERRORS = [
    # the three of the report
    (
        ("keyslots", "0", "kdf", "iterations"),
        2**32,
        r"keyslots\.0: pbkdf2 iterations 4294967296 out of range 1000\.\.4294967295",
    ),
    (
        ("keyslots", "1", "kdf", "memory"),
        2**31,
        r"keyslots\.1: argon2 memory 2147483648 KiB out of range 32\.\.4194304",
    ),
    (("keyslots", "1", "kdf", "memory"), 2**40, r"keyslots\.1: argon2 memory 1099511627776 KiB out of range"),
    (
        ("keyslots", "0", "area", "key_size"),
        2**33,
        r"keyslots\.0: area\.key_size 8589934592 out of range 1\.\.512",
    ),
    # and the rest of the parameters that reach a KDF, an allocation or a loop
    (("keyslots", "0", "kdf", "iterations"), 999, r"keyslots\.0: pbkdf2 iterations 999 out of range"),
    (("keyslots", "0", "kdf", "iterations"), -1, r"keyslots\.0: pbkdf2 iterations -1 out of range"),
    (("keyslots", "1", "kdf", "time"), 0, r"keyslots\.1: argon2 time 0 out of range 1\.\.4294967295"),
    (("keyslots", "1", "kdf", "time"), 2**32, r"keyslots\.1: argon2 time 4294967296 out of range"),
    (("keyslots", "1", "kdf", "cpus"), 0, r"keyslots\.1: argon2 cpus 0 out of range 1\.\.16777215"),
    (("keyslots", "1", "kdf", "cpus"), 2**24, r"keyslots\.1: argon2 cpus 16777216 out of range"),
    (
        ("keyslots", "1", "kdf", "cpus"),
        9,
        r"keyslots\.1: argon2 memory 64 KiB is less than 8 KiB per lane \(9 cpus\)",
    ),
    (("keyslots", "0", "kdf", "salt"), "", r"keyslots\.0: kdf salt must be 32 bytes"),
    (("keyslots", "0", "key_size"), 2**33, r"keyslots\.0: key_size 8589934592 out of range 1\.\.512"),
    (("keyslots", "0", "key_size"), 0, r"keyslots\.0: key_size 0 out of range"),
    (("keyslots", "1", "area", "key_size"), -5, r"keyslots\.1: area\.key_size -5 out of range"),
    (
        ("keyslots", "0", "area", "offset"),
        str(2**64 - 1),
        r"keyslots\.0: area .* lies outside the key slot area",
    ),
    (("keyslots", "0", "area", "size"), "0", r"keyslots\.0: area too small"),
    (
        ("digests", "0", "iterations"),
        2**32,
        r"digests\.0: iterations 4294967296 out of range 1000\.\.4294967295",
    ),
    (("digests", "0", "iterations"), 0, r"digests\.0: iterations 0 out of range"),
    (("digests", "0", "digest"), "", r"digests\.0: digest must be 1\.\.64 bytes"),
    (("digests", "0", "digest"), "A" * 4000, r"digests\.0: digest must be 1\.\.64 bytes"),
]


@pytest.mark.parametrize(("where", "value", "message"), HEADER_ERRORS)
def test_an_out_of_range_parameter_makes_the_header_invalid(
    image: Path, where: tuple[str, ...], value: object, message: str
) -> None:
    rewrite(image, setter(*where, value=value))
    before = image.read_bytes()
    with pytest.raises(InvalidHeaderError, match=message):
        try_everything(image)
    assert image.read_bytes() == before


SLOT_ERRORS = [
    # valid JSON this library cannot use (cryptsetup may): that slot is unusable, before any KDF runs
    (("keyslots", "0", "kdf", "hash"), "nonsense", 0, r"pbkdf2 hash 'nonsense' is not supported"),
    (("keyslots", "1", "af", "hash"), "nonsense", 1, r"AF hash 'nonsense' is not supported"),
    (
        ("keyslots", "0", "area", "encryption"),
        "serpent-xts-plain64",
        0,
        r"unsupported cipher 'serpent-xts-plain64'",
    ),
    (("keyslots", "1", "area", "key_size"), 16, 1, r"needs a 256- or 512-bit key, got 128 bits"),
    (("digests", "0", "hash"), "nonsense", 0, r"digest hash 'nonsense' is not supported"),
]


@pytest.mark.parametrize(("where", "value", "slot", "message"), SLOT_ERRORS)
def test_a_parameter_this_library_cannot_use_makes_the_slot_unusable(
    image: Path, where: tuple[str, ...], value: object, slot: int, message: str
) -> None:
    rewrite(image, setter(*where, value=value))
    before = image.read_bytes()
    passphrase = PASS if slot == 0 else OTHER
    with Luks2Volume.open(image) as volume:
        with pytest.raises(KeyslotNotActiveError, match=message):
            volume.unlock(passphrase, keyslot=slot)
        if where[0] == "keyslots":  # the other slot still opens, with or without naming it
            other, other_pass = (1, OTHER) if slot == 0 else (0, PASS)
            assert volume.unlock(other_pass, keyslot=other).keyslot == other
            assert volume.unlock(other_pass).keyslot == other
        with pytest.raises(NoKeyError):  # without a slot: skipped, no KDF run, the usual error
            volume.unlock(passphrase)
    assert image.read_bytes() == before


def test_a_hostile_copy_is_an_invalid_copy_and_the_other_one_is_used(image: Path) -> None:
    rewrite(image, setter("keyslots", "0", "kdf", "iterations", value=2**32), copies=(1,))
    before = image.read_bytes()
    with Luks2Volume.open(image, read_only=True) as volume:
        assert volume.unlock(PASS, keyslot=0).keyslot == 0
    assert image.read_bytes() == before


# ---- the fuzzer --------------------------------------------------------------------------------------------


def _ints(low: int, high: int, cheap: tuple[int, int]) -> st.SearchStrategy[object]:
    """Out-of-range integers on both sides, cheap in-range ones, and values of the wrong JSON type."""
    return st.one_of(
        st.integers(-(2**80), low - 1),
        st.integers(high + 1, 2**80),
        st.sampled_from([v for v in (low - 1, high + 1, 2**31, 2**32, 2**63, 2**64) if not low <= v <= high]),
        st.integers(*cheap),
        st.sampled_from(["1000", 1000.0, None, True, [], {}]),
    )


def _u64_texts() -> st.SearchStrategy[object]:
    return st.one_of(
        st.integers(0, 2**70).map(str),
        st.sampled_from(["-1", "", "1e9", "0x10", "dynamic", str(2**64), str(2**64 - 1)]),
        st.integers(0, 2**64),
    )


def _names(*good: str) -> st.SearchStrategy[object]:
    return st.one_of(
        st.sampled_from([*good, "", "nonsense", "md5", "sha3-256", "whirlpool", "shake_128"]), st.just(7)
    )


FIELDS: dict[tuple[str, ...], st.SearchStrategy[object]] = {
    ("keyslots", "0", "kdf", "iterations"): _ints(1000, UINT32_MAX, (1000, 3000)),
    ("keyslots", "0", "kdf", "hash"): _names("sha256", "sha1", "sha512"),
    ("keyslots", "0", "kdf", "type"): _names("pbkdf2", "argon2i", "argon2id", "argon2d"),
    ("keyslots", "0", "kdf", "salt"): st.sampled_from(["", "AAAA", "!!", "A" * 44, "A" * 4000]),
    ("keyslots", "1", "kdf", "time"): _ints(1, UINT32_MAX, (1, 2)),
    ("keyslots", "1", "kdf", "memory"): _ints(32, 4 << 20, (32, 1024)),
    ("keyslots", "1", "kdf", "cpus"): _ints(1, 2**24 - 1, (1, 4)),
    ("keyslots", "1", "kdf", "type"): _names("argon2i", "argon2id", "pbkdf2"),
    ("keyslots", "0", "key_size"): _ints(1, 512, (16, 64)),
    ("keyslots", "1", "key_size"): _ints(1, 512, (16, 64)),
    ("keyslots", "0", "area", "key_size"): _ints(1, 512, (16, 64)),
    ("keyslots", "1", "area", "key_size"): _ints(1, 512, (16, 64)),
    ("keyslots", "0", "area", "offset"): _u64_texts(),
    ("keyslots", "1", "area", "size"): _u64_texts(),
    ("keyslots", "0", "area", "encryption"): _names("aes-xts-plain64", "aes-cbc-essiv:sha256"),
    ("keyslots", "1", "af", "stripes"): _ints(4000, 4000, (3999, 4001)),
    ("keyslots", "1", "af", "hash"): _names("sha256", "sha1"),
    ("digests", "0", "iterations"): _ints(1000, UINT32_MAX, (1000, 2000)),
    ("digests", "0", "hash"): _names("sha256", "sha512"),
    ("digests", "0", "digest"): st.sampled_from(["", "AAAA", "A" * 88, "A" * 4000]),
    ("segments", "0", "sector_size"): _ints(512, 4096, (512, 4096)),
    ("segments", "0", "offset"): _u64_texts(),
    ("segments", "0", "size"): _u64_texts(),
}


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=3, unique=True), data=st.data())
def test_fuzz_kdf_and_area_fields_give_a_luks2_error_and_write_nothing(
    template: Path, scratch: Path, edits: list[tuple[str, ...]], data: st.DataObject
) -> None:
    path = scratch / "fuzz.img"
    shutil.copyfile(template, path)
    changes = [setter(*where, value=data.draw(FIELDS[where], label=".".join(where))) for where in edits]

    def edit(top: dict[str, Any]) -> None:
        for change in changes:
            change(top)

    rewrite(path, edit)
    before = path.read_bytes()
    with contextlib.suppress(Luks2Error):  # anything else (ValueError, MemoryError, a panic) fails the test
        try_everything(path)
    assert path.read_bytes() == before


def test_argon2_memory_above_this_machines_ram_is_refused_not_run(
    image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cryptsetup only warns; touching more memory than the machine has would end in the OOM killer."""
    monkeypatch.setattr(kdf_module, "_ram_kib", lambda: 48)  # slot 1 needs 64 KiB
    with Luks2Volume.open(image, read_only=True) as volume:
        with pytest.raises(KeyslotNotActiveError, match=r"argon2 needs 64 KiB of memory, more than this"):
            volume.unlock(OTHER, keyslot=1)
        with pytest.raises(NoKeyError):
            volume.unlock(OTHER)  # skipped without a KDF run
        assert volume.unlock(PASS).keyslot == 0


@pytest.mark.parametrize(
    ("kdf", "length"),
    [
        (Pbkdf2Kdf(hash="sha256", iterations=2**32, salt=bytes(32)), 32),
        (Argon2Kdf(type="argon2id", time=1, memory=2**40, cpus=1, salt=bytes(32)), 32),
        (Argon2Kdf(type="argon2id", time=2**32, memory=64, cpus=1, salt=bytes(32)), 32),
        (Argon2Kdf(type="argon2id", time=1, memory=64, cpus=1, salt=bytes(32)), 2**33),
        (Argon2Kdf(type="argon2id", time=1, memory=64, cpus=9, salt=bytes(32)), 32),
    ],
)
def test_the_kdf_call_site_refuses_what_validation_would(kdf: Pbkdf2Kdf | Argon2Kdf, length: int) -> None:
    """Defence in depth: a value that reaches derive_key unvalidated is a LUKS2 error, never a panic."""
    with pytest.raises(InvalidMetadataError, match=r"key derivation (refused|failed)"):
        derive_key(kdf, b"secret", length)


def test_argon2_raw_checks_limits_before_cffi_sees_them() -> None:
    for kwargs in (
        {"time_cost": 2**32, "memory_kib": 64, "parallelism": 1, "length": 32},
        {"time_cost": 1, "memory_kib": 2**40, "parallelism": 1, "length": 32},
        {"time_cost": 1, "memory_kib": 64, "parallelism": 2**24, "length": 32},
        {"time_cost": 1, "memory_kib": 64, "parallelism": 1, "length": 2**33},
    ):
        with pytest.raises(ValueError, match=r"argon2 failed: .* out of range"):
            argon2_raw("argon2id", b"secret", bytes(32), **kwargs)


def test_kdf_settings_refuse_values_past_32_bits() -> None:
    with pytest.raises(InvalidMetadataError, match="out of range"):
        KdfSettings(type="pbkdf2", iterations=2**32)
    with pytest.raises(InvalidMetadataError, match="out of range"):
        KdfSettings(type="argon2id", iterations=2**32, memory_kib=64, parallel=1)

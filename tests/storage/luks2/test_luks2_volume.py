"""The everyday API on image files: format, unlock, key slots, tokens, labels, offsets, read-only, locking."""

from __future__ import annotations

import fcntl
import io
import json
import logging
from typing import TYPE_CHECKING

import pytest

from tests.storage.luks2._luks2_helpers import (
    ARGON2ID_FAST,
    MIB,
    OTHER,
    PASS,
    PBKDF2_FAST,
    format_small,
    image,
)
from volumed.storage.luks2 import (
    BusyError,
    ConcurrentUpdateError,
    DeviceError,
    InvalidMetadataError,
    KdfSettings,
    Luks2Volume,
    NoKeyError,
    NoSpaceError,
    ReadOnlyError,
    VolumeKey,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_format_defaults_match_cryptsetup_layout(tmp_path: Path) -> None:
    path = image(tmp_path / "d.img", 17 * MIB)
    with Luks2Volume.format(path, PASS, kdf=PBKDF2_FAST) as vol:
        assert vol.seqid == 3
        assert vol.metadata_size == 16384
        assert vol.metadata.config.keyslots_size == 16744448
        assert vol.segment.offset == 16 * MIB
        assert vol.segment.size is None
        assert vol.segment.sector_size == 4096
        slot = vol.keyslots[0]
        assert (slot.area_offset, slot.area_size, slot.key_size) == (32768, 258048, 64)
        assert vol.metadata.digests[0].iterations == 1000
        assert vol.data_size == MIB
        key = vol.unlock(PASS)
        assert key.keyslot == 0
        assert key.bits == 512


def test_unaligned_data_area_picks_512_byte_sectors(tmp_path: Path) -> None:
    path = image(tmp_path / "d.img", 3 * MIB + 512)
    with format_small(path) as vol:
        assert vol.segment.sector_size == 512
    with pytest.raises(InvalidMetadataError, match="multiple of the sector size"):
        format_small(image(tmp_path / "e.img", 3 * MIB + 512), sector_size=4096)


def test_too_small_device(tmp_path: Path) -> None:
    path = image(tmp_path / "d.img", MIB)
    with pytest.raises(DeviceError, match="too small"):
        Luks2Volume.format(path, PASS, kdf=PBKDF2_FAST)


def test_key_slot_lifecycle(tmp_path: Path) -> None:
    with format_small(tmp_path / "d.img") as vol:
        key = vol.unlock(PASS)
        slot = vol.add_key(OTHER, passphrase=PASS, kdf=ARGON2ID_FAST)
        assert slot == 1
        assert vol.keyslots[1].area_offset == 32768 + 258048
        assert vol.unlock(OTHER) == key
        assert vol.unlock(OTHER).keyslot == 1
        vol.kill_slot(0)
        with pytest.raises(NoKeyError):
            vol.unlock(PASS)
        # first gap: the freed area at 32768 is reused
        again = vol.add_key(b"third", volume_key=key, kdf=PBKDF2_FAST)
        assert again == 0
        assert vol.keyslots[0].area_offset == 32768
        changed = vol.change_key(OTHER, b"fourth", kdf=PBKDF2_FAST)
        assert changed == 1
        with pytest.raises(NoKeyError):
            vol.unlock(OTHER)
        assert vol.unlock(b"fourth").keyslot == 1
        assert vol.metadata.digests[0].keyslots == (1, 0)  # appended, as cryptsetup does


def test_add_key_by_volume_key_checks_it(tmp_path: Path) -> None:
    with format_small(tmp_path / "d.img") as vol:
        with pytest.raises(NoKeyError):
            vol.add_key(OTHER, volume_key=bytes(64), kdf=PBKDF2_FAST)
        with pytest.raises(InvalidMetadataError, match="exactly one"):
            vol.add_key(OTHER, kdf=PBKDF2_FAST)


def test_slot_numbers_and_space(tmp_path: Path) -> None:
    with format_small(tmp_path / "d.img") as vol:
        key = vol.unlock(PASS)
        with pytest.raises(InvalidMetadataError, match="already in use"):
            vol.add_key(OTHER, volume_key=key, keyslot=0, kdf=PBKDF2_FAST)
        with pytest.raises(InvalidMetadataError, match="out of range"):
            vol.add_key(OTHER, volume_key=key, keyslot=32, kdf=PBKDF2_FAST)
        for slot in (31, 7, 2):
            assert vol.add_key(OTHER, volume_key=key, keyslot=slot, kdf=PBKDF2_FAST) == slot
        with pytest.raises(NoSpaceError, match="no gap"):
            vol.add_key(OTHER, volume_key=key, kdf=PBKDF2_FAST)
        assert list(vol.keyslots) == [0, 31, 7, 2]


def test_priorities_decide_the_order(tmp_path: Path) -> None:
    with format_small(tmp_path / "d.img") as vol:
        key = vol.unlock(PASS)
        vol.add_key(PASS, volume_key=key, keyslot=3, kdf=PBKDF2_FAST)
        assert vol.unlock(PASS).keyslot == 0
        vol.set_priority(3, 2)
        assert vol.unlock(PASS).keyslot == 3
        vol.set_priority(3, 0)
        vol.set_priority(0, 0)
        with pytest.raises(NoKeyError):
            vol.unlock(PASS)
        assert vol.unlock(PASS, keyslot=3).keyslot == 3
        vol.set_priority(0, None)
        assert "priority" not in json.loads(vol.json_text)["keyslots"]["0"]


def test_tokens(tmp_path: Path) -> None:
    with format_small(tmp_path / "d.img") as vol:
        assert vol.import_token('{"type":"a","keyslots":["0"],"k":[1,2]}', token_id=5) == 5
        assert vol.import_token({"type": "b", "keyslots": []}) == 0
        assert vol.export_token(5) == '{"type":"a","keyslots":["0"],"k":[1,2]}'
        with pytest.raises(InvalidMetadataError, match="already exists"):
            vol.import_token({"type": "c", "keyslots": []}, token_id=5)
        vol.import_token({"type": "c", "keyslots": []}, token_id=5, replace_existing=True)
        assert vol.tokens[5].type == "c"
        for bad, message in [
            ({"type": "luks2-x", "keyslots": []}, "reserved"),
            ({"type": "x", "keyslots": ["9"]}, "does not exist"),
            ({"type": "", "keyslots": []}, "type"),
            ({"type": "x"}, "keyslots"),
            ("[]", "object"),
            ("{", "not valid JSON"),
        ]:
            with pytest.raises(InvalidMetadataError, match=message):
                vol.import_token(bad, token_id=1)
        for bad_id in (-1, 32):
            with pytest.raises(InvalidMetadataError, match="out of range"):
                vol.import_token({"type": "x", "keyslots": []}, token_id=bad_id)
            with pytest.raises(InvalidMetadataError, match="out of range"):
                vol.export_token(bad_id)
        vol.remove_token(5)
        with pytest.raises(InvalidMetadataError, match="does not exist"):
            vol.export_token(5)


def test_kill_slot_drops_it_from_tokens(tmp_path: Path) -> None:
    with format_small(tmp_path / "d.img") as vol:
        vol.add_key(OTHER, passphrase=PASS, kdf=PBKDF2_FAST)
        vol.import_token({"type": "t", "keyslots": ["1", "0"]}, token_id=2)
        area = vol.keyslots[1]
        before = (tmp_path / "d.img").read_bytes()[area.area_offset : area.area_offset + area.area_size]
        vol.kill_slot(1)
        after = (tmp_path / "d.img").read_bytes()[area.area_offset : area.area_offset + area.area_size]
        assert before != after
        assert vol.export_token(2) == '{"type":"t","keyslots":["0"]}'
        assert vol.metadata.digests[0].keyslots == (0,)
        with pytest.raises(InvalidMetadataError, match="not active"):
            vol.kill_slot(1)


def test_label_and_subsystem(tmp_path: Path) -> None:
    with format_small(tmp_path / "d.img", label="STATE", subsystem="talos") as vol:
        assert (vol.label, vol.subsystem) == ("STATE", "talos")
        vol.set_label(label="EPHEMERAL")
        assert (vol.label, vol.subsystem) == ("EPHEMERAL", "talos")
    with Luks2Volume.open(tmp_path / "d.img") as vol:
        assert vol.label == "EPHEMERAL"
        with pytest.raises(InvalidMetadataError, match="47"):
            vol.set_label(label="x" * 48)


@pytest.mark.parametrize("size", [16384, 65536, 4 << 20])
def test_metadata_sizes(tmp_path: Path, size: int) -> None:
    with format_small(image(tmp_path / "d.img", 12 * MIB), metadata_size=size) as vol:
        assert vol.metadata_size == size
        assert vol.keyslots[0].area_offset == 2 * size
    with Luks2Volume.open(tmp_path / "d.img") as vol:
        assert vol.unlock(PASS).keyslot == 0


def test_volume_at_an_offset_inside_a_disk_image(tmp_path: Path) -> None:
    disk = image(tmp_path / "disk.img", 8 * MIB)
    start, length = MIB, 4 * MIB
    with Luks2Volume.format(disk, PASS, offset=start, size=length, kdf=PBKDF2_FAST, keyslots_size=MIB) as vol:
        assert vol.data_size == length - 2 * MIB
    raw = disk.read_bytes()
    assert raw[:start] == bytes(start)
    assert raw[start + length :] == bytes(len(raw) - start - length)
    assert raw[start : start + 6] == b"LUKS\xba\xbe"
    with Luks2Volume.open(disk, offset=start, size=length) as vol:
        assert vol.unlock(PASS).keyslot == 0
    with open(disk, "r+b") as f:
        vol = Luks2Volume.from_files(f, offset=start, size=length)
        assert vol.unlock(PASS).keyslot == 0


def test_detached_header(tmp_path: Path) -> None:
    data = image(tmp_path / "data.img", MIB)
    header = tmp_path / "h.hdr"
    with Luks2Volume.format(data, PASS, header=header, kdf=PBKDF2_FAST) as vol:
        assert vol.segment.offset == 0
        assert vol.data_size == MIB
    assert data.read_bytes() == bytes(MIB)
    assert header.stat().st_size == 16 * MIB
    with Luks2Volume.open(data, header=header) as vol:
        assert vol.unlock(PASS).keyslot == 0


def test_in_memory_files(tmp_path: Path) -> None:
    format_small(tmp_path / "d.img").close()
    buffer = io.BytesIO((tmp_path / "d.img").read_bytes())
    vol = Luks2Volume.from_files(buffer)
    vol.add_key(OTHER, passphrase=PASS, kdf=PBKDF2_FAST)
    assert Luks2Volume.from_files(io.BytesIO(buffer.getvalue())).unlock(OTHER).keyslot == 1


def test_unknown_mandatory_requirement_makes_it_read_only(tmp_path: Path) -> None:
    from volumed.storage.luks2 import lowlevel

    path = tmp_path / "d.img"
    with format_small(path) as vol:
        file = open(path, "r+b")  # noqa: SIM115 - closed below
        region = lowlevel.Region(file)
        state = lowlevel.load(region)
        meta = state.metadata
        config = lowlevel.Config(
            json_size=meta.config.json_size,
            keyslots_size=meta.config.keyslots_size,
            requirements={"mandatory": ["future-feature"]},
        )
        from dataclasses import replace

        lowlevel.commit(region, state, replace(meta, config=config))
        region.file.close()
    with Luks2Volume.open(path) as vol:
        assert vol.read_only_reason == "unsupported mandatory requirements: future-feature"
        assert vol.unlock(PASS).keyslot == 0
        before = path.read_bytes()
        with pytest.raises(ReadOnlyError, match="future-feature"):
            vol.add_key(OTHER, passphrase=PASS, kdf=PBKDF2_FAST)
        with pytest.raises(ReadOnlyError):
            vol.import_token({"type": "x", "keyslots": []})
        assert path.read_bytes() == before


def test_read_only_open_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "d.img"
    format_small(path).close()
    before = path.read_bytes()
    with Luks2Volume.open(path, read_only=True) as vol, pytest.raises(ReadOnlyError):
        vol.set_label(label="x")
    assert path.read_bytes() == before


def test_concurrent_update_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "d.img"
    format_small(path).close()
    with Luks2Volume.open(path) as first, Luks2Volume.open(path) as second:
        first.set_label(label="one")
        before = path.read_bytes()
        with pytest.raises(ConcurrentUpdateError, match="changed on disk"):
            second.add_key(OTHER, passphrase=PASS, kdf=PBKDF2_FAST)
        assert path.read_bytes() == before


def test_busy_when_another_open_file_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "d.img"
    format_small(path).close()
    with Luks2Volume.open(path) as vol, open(path, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        try:
            with (
                pytest.raises(BusyError, match="locked"),
                vol.data_region.locked(exclusive=True, timeout=0.2),
            ):
                pass
        finally:
            fcntl.flock(holder.fileno(), fcntl.LOCK_UN)
        with vol.data_region.locked(exclusive=True, timeout=0.2):
            pass


def test_not_found(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="no such file"):
        Luks2Volume.open(tmp_path / "missing.img")


def test_no_secret_in_reprs_errors_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = b"Sup3r-Secret-Pass"
    path = tmp_path / "d.img"
    with format_small(path, passphrase=secret) as vol:
        key = vol.unlock(secret)
        texts = [repr(vol), repr(key), str(key), repr(vol.metadata), repr(vol.keyslots), repr(vol.tokens)]
        for call in (
            lambda: vol.unlock(b"wrong-" + secret),
            lambda: vol.add_key(secret, volume_key=key.material[::-1], kdf=PBKDF2_FAST),
            lambda: vol.check_volume_key(key.material[::-1]),
        ):
            with pytest.raises(NoKeyError) as info:
                call()
            texts.append(str(info.value))
            texts.append(repr(info.value))
        texts.append(caplog.text)
        blob = "\n".join(texts)
        for needle in (secret.decode(), key.hex(), key.material.hex()[:16], str(key.material)[2:20]):
            assert needle not in blob
        assert repr(key) == "VolumeKey(bits=512, keyslot=0)"
        assert key == VolumeKey(key.material)
        assert key != VolumeKey(bytes(64))


def test_kdf_settings_validation() -> None:
    with pytest.raises(InvalidMetadataError, match="unknown pbkdf"):
        KdfSettings(type="scrypt")
    with pytest.raises(InvalidMetadataError, match="at least 1000"):
        KdfSettings(type="pbkdf2", iterations=10)
    with pytest.raises(InvalidMetadataError, match="parallel"):
        KdfSettings(parallel=9)
    with pytest.raises(InvalidMetadataError, match="hash"):
        KdfSettings(hash="md4")


def test_all_32_slots_on_the_default_layout(tmp_path: Path) -> None:
    path = image(tmp_path / "d.img", 17 * MIB)
    with Luks2Volume.format(path, PASS, kdf=PBKDF2_FAST, keyslot=31) as vol:
        key = vol.unlock(PASS)
        for expected in range(31):
            assert vol.add_key(b"k%d" % expected, volume_key=key, kdf=PBKDF2_FAST) == expected
        assert len(vol.keyslots) == 32
        with pytest.raises(NoSpaceError, match="all 32 key slots"):
            vol.add_key(OTHER, volume_key=key, kdf=PBKDF2_FAST)
        assert vol.unlock(b"k30").keyslot == 30


def test_given_uuid_is_canonical(tmp_path: Path) -> None:
    with format_small(tmp_path / "d.img", uuid="0A1B2C3D-0000-4000-8000-00000000ABCD") as vol:
        assert vol.uuid == "0a1b2c3d-0000-4000-8000-00000000abcd"
    with pytest.raises(InvalidMetadataError, match="not a UUID"):
        format_small(tmp_path / "e.img", uuid="nope")


def test_unlock_order_prefers_cheap_slots_and_leaves_token_slots_last(tmp_path: Path) -> None:
    from volumed.storage.luks2.lowlevel import unlock_order

    with format_small(image(tmp_path / "d.img", 20 * MIB), kdf=ARGON2ID_FAST, keyslots_size=4 * MIB) as vol:
        key = vol.unlock(PASS)
        vol.add_key(OTHER, volume_key=key, keyslot=1, kdf=PBKDF2_FAST)
        vol.add_key(OTHER, volume_key=key, keyslot=2, kdf=PBKDF2_FAST)
        vol.import_token({"type": "tpm", "keyslots": ["1"]})
        assert unlock_order(vol.metadata) == [2, 0, 1]  # token-served slot 1 last, then by KDF cost
        vol.set_priority(0, 2)
        vol.set_priority(2, 0)
        assert unlock_order(vol.metadata) == [0, 1]


def test_a_volume_size_past_the_end_of_the_device_is_refused(tmp_path: Path) -> None:
    """A --volume-size beyond the file was accepted; reading the payload then failed with a bare OSError."""
    path = image(tmp_path / "disk.img", 20 * MIB)
    before = path.read_bytes()
    with pytest.raises(DeviceError, match=r"runs past the end of the device \(20971520 bytes\)"):
        Luks2Volume.format(path, PASS, kdf=PBKDF2_FAST, size=40 * MIB)
    assert path.read_bytes() == before
    with Luks2Volume.format(path, PASS, kdf=PBKDF2_FAST):
        pass
    with pytest.raises(DeviceError, match=r"the volume \(41943040 bytes at offset 0\) runs past the end"):
        Luks2Volume.open(path, size=40 * MIB)
    with pytest.raises(DeviceError, match="runs past the end"):
        Luks2Volume.open(path, offset=MIB, size=20 * MIB)
    Luks2Volume.open(path, size=20 * MIB).close()


def test_a_failed_format_removes_the_header_file_it_created(tmp_path: Path) -> None:
    empty = tmp_path / "empty.img"
    empty.touch()
    header = tmp_path / "new.hdr"
    with pytest.raises(DeviceError, match="too small"):
        Luks2Volume.format(empty, PASS, kdf=PBKDF2_FAST, header=header)
    assert not header.exists()  # an empty header file was left behind
    existing = tmp_path / "existing.hdr"
    existing.write_bytes(b"kept")
    with pytest.raises(DeviceError, match="too small"):
        Luks2Volume.format(empty, PASS, kdf=PBKDF2_FAST, header=existing)
    assert existing.read_bytes() == b"kept"  # a file it did not create stays

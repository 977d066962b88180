"""Header round trips (hypothesis): binary header and JSON metadata parse(serialise(x)) == x, byte-exact."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volumed.storage.luks2 import InvalidHeaderError
from volumed.storage.luks2._metadata import Token
from volumed.storage.luks2.lowlevel import (
    HEADER_SIZES,
    Argon2Kdf,
    BinaryHeader,
    Config,
    Digest,
    Keyslot,
    Metadata,
    Pbkdf2Kdf,
    Segment,
    compute_checksum,
    validate,
)

ascii_text = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=47)
salt32 = st.binary(min_size=32, max_size=32)


@st.composite
def binary_headers(draw: st.DrawFn) -> BinaryHeader:
    size = draw(st.sampled_from(HEADER_SIZES))
    return BinaryHeader(
        hdr_size=size,
        seqid=draw(st.integers(0, 2**64 - 1)),
        label=draw(ascii_text),
        uuid=draw(st.uuids()).hex,
        subsystem=draw(ascii_text),
        hdr_offset=draw(st.sampled_from([0, size])),
        salt=draw(st.binary(min_size=64, max_size=64)),
    )


@given(binary_headers())
def test_binary_header_round_trip(header: BinaryHeader) -> None:
    json_area = b"{}" + bytes(header.json_size - 2)
    header = header.with_checksum(json_area)
    raw = header.serialize()
    assert len(raw) == 4096
    parsed = BinaryHeader.parse(raw, where=header.hdr_offset)
    assert parsed == header
    assert parsed.salt == header.salt
    assert compute_checksum(parsed, json_area) == parsed.csum


kdfs = st.one_of(
    st.builds(
        Pbkdf2Kdf,
        hash=st.sampled_from(["sha1", "sha256", "sha512"]),
        iterations=st.integers(1000, 10**7),
        salt=salt32,
    ),
    st.builds(
        Argon2Kdf,
        type=st.sampled_from(["argon2i", "argon2id"]),
        time=st.integers(1, 100),
        memory=st.integers(32, 4 << 20),
        cpus=st.integers(1, 4),
        salt=salt32,
    ),
)


@st.composite
def metadata(draw: st.DrawFn) -> Metadata:
    hdr_size = draw(st.sampled_from(HEADER_SIZES))
    key_size = draw(st.sampled_from([32, 64]))
    slot_ids = draw(st.lists(st.integers(0, 31), min_size=1, max_size=6, unique=True))
    area = -(-key_size * 4000 // 4096) * 4096
    keyslots = {
        i: Keyslot(
            key_size=key_size,
            area_offset=2 * hdr_size + n * area,
            area_size=area,
            area_encryption="aes-xts-plain64",
            area_key_size=key_size,
            kdf=draw(kdfs),
            af_hash=draw(st.sampled_from(["sha1", "sha256", "sha512"])),
            priority=draw(st.sampled_from([None, 0, 2])),
        )
        for n, i in enumerate(slot_ids)
    }
    keyslots_size = len(slot_ids) * area + draw(st.integers(0, 8)) * 4096
    segment = Segment(
        type="crypt",
        offset=draw(st.sampled_from([0, 2 * hdr_size + keyslots_size])),
        size=draw(st.sampled_from([None, 4096 * 16])),
        iv_tweak=draw(st.integers(0, 2**40)),
        encryption="aes-xts-plain64",
        sector_size=draw(st.sampled_from([512, 4096])),
    )
    token_ids = draw(st.lists(st.integers(0, 31), max_size=3, unique=True))
    tokens = {
        t: Token(
            type=f"t{t}",
            keyslots=(slot_ids[0],),
            body={"type": f"t{t}", "keyslots": [str(slot_ids[0])], "x": draw(st.text(max_size=8))},
        )
        for t in token_ids
    }
    digest = Digest(
        keyslots=tuple(slot_ids),
        segments=(0,),
        hash="sha256",
        iterations=1000,
        salt=draw(salt32),
        digest=draw(salt32),
    )
    return Metadata(
        keyslots=keyslots,
        tokens=tokens,
        segments={0: segment},
        digests={0: digest},
        config=Config(
            json_size=hdr_size - 4096,
            keyslots_size=keyslots_size,
            flags=draw(st.sampled_from([None, ("allow-discards",)])),
        ),
    )


@given(metadata())
def test_metadata_round_trip_is_byte_exact(meta: Metadata) -> None:
    validate(meta, hdr_size=meta.config.json_size + 4096)
    text = meta.to_json()
    again = Metadata.from_json(text)
    assert again == meta
    assert again.to_json() == text
    compact = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False).encode()
    assert text == compact  # compact, raw UTF-8, like cryptsetup


# cryptsetup 2.6.1's own bytes (luksFormat + config --priority prefer + token import), verbatim.
CRYPTSETUP_JSON = (
    '{"keyslots":{"0":{"type":"luks2","key_size":64,"af":{"type":"luks1","stripes":4000,"hash":"sha256"},'
    '"area":{"type":"raw","offset":"32768","size":"258048","encryption":"aes-xts-plain64","key_size":64},'
    '"kdf":{"type":"argon2id","time":4,"memory":32768,"cpus":1,"salt":"EI96K64ddhDePs51CCmofBGzYTJkBfHm3ox5XV7zkz0="},'
    '"priority":2}},"tokens":{"3":{"type":"foo","keyslots":["0"],"x":1}},"segments":{"0":{"type":"crypt",'
    '"offset":"16777216","size":"dynamic","iv_tweak":"0","encryption":"aes-xts-plain64","sector_size":4096}},'
    '"digests":{"0":{"type":"pbkdf2","keyslots":["0"],"segments":["0"],"hash":"sha256","iterations":1000,'
    '"salt":"CuIz5i+7OP/g0YUFxKX6Kl7anNTf+N0LvLHXi+us61Q=","digest":"wzeV7fGQrsn7i4uAB4OLb9pn/r1lBHV7sFra2rlOSIg="}},'
    '"config":{"json_size":"12288","keyslots_size":"16744448"}}'
)


def test_cryptsetup_json_reserialises_exactly() -> None:
    meta = Metadata.from_json(CRYPTSETUP_JSON.encode())
    validate(meta, hdr_size=16384)
    assert meta.to_json().decode() == CRYPTSETUP_JSON


def _broken(path: list[str], value: object) -> bytes:
    obj = json.loads(CRYPTSETUP_JSON)
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["keyslots", "0", "kdf", "salt"], "AAAA", "32 bytes"),
        (["keyslots", "0", "area", "type"], "other", "raw"),
        (["keyslots", "0", "area", "offset"], "16384", "outside"),
        (["keyslots", "0", "area", "size"], 258048, "decimal string"),
        (["digests", "0", "keyslots"], [], "exactly one digest"),
        (["config", "json_size"], "4096", "json_size"),
        (["config", "keyslots_size"], "16744449", "aligned"),
        (["segments", "0", "offset"], "16777217", "aligned"),
        (["segments", "0", "offset"], "20480", "overlaps"),
        (["tokens", "3", "keyslots"], ["5"], "missing keyslot"),
        (["tokens", "3", "type"], "", "type"),
        (["keyslots", "x"], {}, "decimal id"),
        (["tokens", "32"], {"type": "a", "keyslots": []}, "out of range"),
        (["config"], KeyError, "config"),
    ],
)
def test_cryptsetup_rules_reject(path: list[str], value: object, message: str) -> None:
    with pytest.raises(InvalidHeaderError, match=message):
        _parse_and_validate(_broken(path, value))


def _parse_and_validate(text: bytes) -> None:
    validate(Metadata.from_json(text), hdr_size=16384)


@pytest.mark.parametrize("text", [b"not json", b"[1,2]", b'{"keyslots":', '{"a":"\xff"}'.encode("latin-1")])
def test_garbage_json_is_a_clear_error(text: bytes) -> None:
    with pytest.raises(InvalidHeaderError, match="metadata"):
        Metadata.from_json(text)


def test_no_salt_or_digest_in_reprs() -> None:
    meta = Metadata.from_json(CRYPTSETUP_JSON.encode())
    text = repr(meta.keyslots) + repr(meta.digests)
    assert "EI96K64" not in text
    assert "CuIz5i" not in text
    assert "salt=" not in text


@given(metadata(), binary_headers())
def test_whole_header_written_and_loaded(meta: Metadata, binary: BinaryHeader) -> None:
    """Both copies through write_copies and load: same metadata, same JSON bytes, seqid and label kept."""
    import io
    from dataclasses import replace

    from volumed.storage.luks2.lowlevel import Region, load, write_copies

    hdr_size = meta.config.json_size + 4096
    binary = replace(binary, hdr_size=hdr_size, hdr_offset=0)
    text = meta.to_json()
    region = Region(io.BytesIO(bytes(2 * hdr_size)))
    write_copies(region, binary, text + bytes(meta.config.json_size - len(text)), (b"a" * 64, b"b" * 64))
    state = load(region)
    assert state.problems == ()
    assert state.metadata == meta
    assert state.json_text == text
    assert (state.seqid, state.binary.label, state.binary.uuid) == (binary.seqid, binary.label, binary.uuid)
    assert state.salts == (b"a" * 64, b"b" * 64)

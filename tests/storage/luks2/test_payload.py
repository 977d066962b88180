"""PayloadStream: any position and length, read-modify-write of partial data units, against a plain model."""

from __future__ import annotations

import errno
import io
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from volumed.storage.luks2.payload import CHUNK, PayloadStream
from volumed.storage.luks2.xts import XtsCipher

KEY = bytes(range(64))
OFFSET = 4096


def make(
    size: int, sector_size: int, iv_tweak: int = 0, *, fill: bytes = b""
) -> tuple[io.BytesIO, PayloadStream]:
    """A device: a 4 KiB header, an encrypted segment holding ``fill`` (zero padded), a 512-byte tail."""
    plain = fill.ljust(size, b"\0")
    raw = XtsCipher(KEY).encrypt(plain, iv_tweak=iv_tweak, sector_size=sector_size)
    device = io.BytesIO(b"H" * OFFSET + raw + b"T" * 512)
    stream = PayloadStream(
        device, offset=OFFSET, size=size, sector_size=sector_size, iv_tweak=iv_tweak, volume_key=KEY
    )
    return device, stream


def ciphertext_of(device: io.BytesIO, size: int) -> bytes:
    return device.getvalue()[OFFSET : OFFSET + size]


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_reads_what_xts_wrote(sector_size: int) -> None:
    fill = os.urandom(8 * sector_size)
    _, stream = make(8 * sector_size, sector_size, iv_tweak=5, fill=fill)
    assert stream.read() == fill
    stream.seek(sector_size + 3)
    assert stream.read(10) == fill[sector_size + 3 : sector_size + 13]
    assert stream.tell() == sector_size + 13
    assert stream.pread(100, len(fill) - 50) == fill[-50:]
    assert stream.read(0) == b""
    stream.seek(0, io.SEEK_END)
    assert stream.read(10) == b""


@settings(max_examples=40)
@given(
    sector_size=st.sampled_from([512, 4096]),
    writes=st.lists(
        st.tuples(st.integers(min_value=0, max_value=4 * 4096), st.binary(min_size=1, max_size=9000)),
        max_size=6,
    ),
    iv_tweak=st.integers(min_value=0, max_value=2**64 - 1),
)
def test_random_writes_match_a_plain_model(
    sector_size: int, writes: list[tuple[int, bytes]], iv_tweak: int
) -> None:
    size = 8 * 4096
    device, stream = make(size, sector_size, iv_tweak)
    model = bytearray(size)
    for position, data in writes:
        data = data[: size - position]
        stream.seek(position)
        assert stream.write(data) == len(data)
        model[position : position + len(data)] = data
    stream.seek(0)
    assert stream.read() == bytes(model)
    expected = XtsCipher(KEY).encrypt(model, iv_tweak=iv_tweak, sector_size=sector_size)
    assert ciphertext_of(device, size) == expected
    assert device.getvalue()[:OFFSET] == b"H" * OFFSET
    assert device.getvalue()[OFFSET + size :] == b"T" * 512


def test_spans_larger_than_a_chunk() -> None:
    size = CHUNK * 2 + 8192
    device, stream = make(size, 4096, iv_tweak=100)
    data = os.urandom(CHUNK + 10000)
    stream.seek(CHUNK - 5000)
    stream.write(data)
    model = bytearray(size)
    model[CHUNK - 5000 : CHUNK - 5000 + len(data)] = data
    stream.seek(0)
    assert stream.read() == bytes(model)
    assert ciphertext_of(device, size) == XtsCipher(KEY).encrypt(model, iv_tweak=100, sector_size=4096)


def test_buffered_reader_and_writer_work_on_top() -> None:
    fill = os.urandom(16 * 512)
    _, stream = make(len(fill), 512, fill=fill)
    reader = io.BufferedReader(stream, buffer_size=1000)
    assert reader.read(700) + reader.read() == fill


def test_write_past_the_end_changes_nothing() -> None:
    device, stream = make(4096, 512)
    before = device.getvalue()
    stream.seek(4000)
    with pytest.raises(OSError, match="passes the end of the data segment") as info:
        stream.write(b"x" * 100)
    assert info.value.errno == errno.ENOSPC
    assert device.getvalue() == before


def test_device_shorter_than_the_segment_is_an_error() -> None:
    device = io.BytesIO(bytes(OFFSET + 1024))
    stream = PayloadStream(device, offset=OFFSET, size=4096, sector_size=512, iv_tweak=0, volume_key=KEY)
    with pytest.raises(OSError, match="device ends inside the data segment"):
        stream.read()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sector_size": 1000}, "sector_size 1000 is not one of"),
        ({"size": 1000}, "segment size 1000 is not a non-negative multiple of sector_size 512"),
        ({"offset": -1}, "segment offset -1 is negative"),
        ({"iv_tweak": 2**64}, "iv_tweak"),
        ({"volume_key": b"short"}, "256- or 512-bit key"),
        ({"cipher": "aes-cbc-essiv:sha256"}, "unsupported payload cipher"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "offset": 0,
        "size": 4096,
        "sector_size": 512,
        "iv_tweak": 0,
        "volume_key": KEY,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        PayloadStream(io.BytesIO(), **arguments)  # type: ignore[arg-type]


def test_no_key_in_repr_and_closed_stream_refuses_io() -> None:
    device, stream = make(4096, 512)
    assert KEY.hex() not in repr(stream)
    assert repr(stream) == (
        "PayloadStream(offset=4096, size=4096, sector_size=512, cipher='aes-xts-plain64', position=0)"
    )
    stream.close()
    assert "closed" in repr(stream)
    with pytest.raises(ValueError, match="closed"):
        stream.read(1)
    assert not device.closed  # the caller owns the device


def test_truncate_is_unsupported() -> None:
    _, stream = make(4096, 512)
    with pytest.raises(io.UnsupportedOperation):
        stream.truncate(0)


def test_threads_sharing_one_stream_through_pread_and_pwrite() -> None:
    size = 64 * 512
    device, stream = make(size, 4096, iv_tweak=3)
    pieces = [(index * 700, os.urandom(700)) for index in range(size // 700)]

    def write(piece: tuple[int, bytes]) -> None:
        stream.pwrite(piece[1], piece[0])

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, pieces))
    model = bytearray(size)
    for position, data in pieces:
        model[position : position + len(data)] = data
    with ThreadPoolExecutor(max_workers=4) as pool:
        chunks = list(pool.map(lambda position: stream.pread(1000, position), range(0, size, 1000)))
    assert b"".join(chunks) == bytes(model)
    assert ciphertext_of(device, size) == XtsCipher(KEY).encrypt(model, iv_tweak=3, sector_size=4096)


def test_closing_a_stream_after_its_device_is_quiet() -> None:
    device, stream = make(4096, 512)
    device.close()
    stream.close()  # what io's finaliser does to an unclosed stream: it must not flush the closed device
    assert stream.closed

"""The FUSE host's control protocol: framing (message, then key) and the checks of each request."""

from __future__ import annotations

import io
import json
import struct

import pytest

from volumed.storage.activation._fuse_control import (
    MAX_KEY,
    AddRequest,
    ControlError,
    Served,
    add_request,
    encode,
    name_request,
    read_frame,
    served_list,
)

KEY = bytes(range(64))
ADD = AddRequest("luks2-STATE", "/dev/sda4", 16 << 20, 64 << 20, 4096, 0, "aes-xts-plain64")


def exact(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def receive_from(data: bytes) -> tuple[dict[str, object], bytes]:
    stream = exact(data)

    def receive(size: int) -> bytes:
        chunk = stream.read(size)
        if len(chunk) != size:
            raise ConnectionResetError("short")
        return chunk

    return read_frame(receive)


def test_a_frame_carries_the_message_then_the_key_and_decodes_to_both() -> None:
    frame = encode(ADD.message(), KEY)
    assert frame.endswith(KEY)
    assert KEY.hex() not in frame.decode("latin-1")  # raw bytes after the JSON, never in it
    message, key = receive_from(frame)
    assert key == KEY
    assert "key_size" not in message
    assert add_request(message) == ADD


def test_a_frame_without_key_decodes_to_an_empty_key() -> None:
    assert receive_from(encode({"op": "list"})) == ({"op": "list"}, b"")


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (struct.pack(">I", 0), "0 bytes"),
        (struct.pack(">I", 1 << 20), "limit"),
        (struct.pack(">I", 3) + b"[1]", "not a JSON object"),
        (struct.pack(">I", 3) + b"{x}", "not JSON"),
        (struct.pack(">I", 16) + b'{"key_size":999}', "key_size"),
        (struct.pack(">I", 17) + b'{"key_size":true}', "key_size"),
    ],
)
def test_malformed_frames_are_refused(frame: bytes, error: str) -> None:
    with pytest.raises(ControlError, match=error):
        receive_from(frame)


def test_a_frame_cut_short_is_an_error_of_the_connection() -> None:
    with pytest.raises(ConnectionResetError):
        receive_from(encode(ADD.message(), KEY)[:-1])


def test_a_key_longer_than_any_cipher_takes_is_not_encoded() -> None:
    with pytest.raises(ControlError, match="65 bytes") as info:
        encode({"op": "add"}, bytes(MAX_KEY + 1))
    assert "\\x00" not in str(info.value)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"op": "list"}, "not an add request"),
        ({"name": "../etc"}, "invalid mapping name"),
        ({"name": ""}, "name must be"),
        ({"offset": -512}, "offset must be"),
        ({"size": "1"}, "size must be"),
        ({"iv_tweak": True}, "iv_tweak must be"),
        ({"sector_size": 8192}, "not 512"),
        ({"size": 4096 * 3 + 512}, "do not fit"),
        ({"offset": 100}, "do not fit"),
        ({"cipher": "xchacha12,aes-adiantum-plain64"}, "does not decrypt"),
    ],
)
def test_add_requests_are_checked_field_by_field(change: dict[str, object], error: str) -> None:
    with pytest.raises(ControlError, match=error):
        add_request(ADD.message() | change)


def test_remove_needs_a_valid_name() -> None:
    assert name_request({"op": "remove", "name": "luks2-STATE"}, "remove") == "luks2-STATE"
    for message in ({"op": "remove"}, {"op": "remove", "name": "a/b"}, {"op": "list", "name": "x"}):
        with pytest.raises(ControlError):
            name_request(message, "remove")


def test_list_replies_decode_to_served_volumes() -> None:
    entry = {"name": "v", "device": "/d", "offset": 0, "size": 4096, "mountpoint": "/run/v"}
    assert served_list({"ok": True, "volumes": [entry]}) == [Served("v", "/d", 0, 4096, "/run/v")]
    with pytest.raises(ControlError, match="boom"):
        served_list({"ok": False, "error": "boom"})
    with pytest.raises(ControlError, match="integers"):
        served_list({"ok": True, "volumes": [entry | {"size": None}]})
    assert json.loads(encode({"ok": True, "volumes": [entry]})[4:]) == {"ok": True, "volumes": [entry]}

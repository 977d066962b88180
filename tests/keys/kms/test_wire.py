"""Our messages are Talos' on the wire.

Request{string node_uuid = 1; bytes data = 2}, Response{bytes data = 1}.
"""

from hypothesis import given
from hypothesis import strategies as st

from volumed.keys.kms import kms_pb2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload  # wire type 2: length-delimited


@given(node=st.text(min_size=1, max_size=50), data=st.binary(min_size=1, max_size=300))
def test_request_encoding(node: str, data: bytes) -> None:
    wire = kms_pb2.Request(node_uuid=node, data=data).SerializeToString()
    assert wire == _field(1, node.encode()) + _field(2, data)
    assert kms_pb2.Request.FromString(wire) == kms_pb2.Request(node_uuid=node, data=data)


@given(data=st.binary(min_size=1, max_size=300))
def test_response_encoding(data: bytes) -> None:
    assert kms_pb2.Response(data=data).SerializeToString() == _field(1, data)


def test_service_and_method_names() -> None:
    service = kms_pb2.DESCRIPTOR.services_by_name["KMSService"]
    assert service.full_name == "sidero.kms.KMSService"
    assert sorted(service.methods_by_name) == ["Seal", "Unseal"]

"""The wire format: lines of JSON, resources as metadata + spec, static detection of nested secrets."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from volumed.cli.api import ApiProtocolError, TypeInfo
from volumed.cli.api._serialize import definition_to_wire, holds_secrets, resource_to_wire
from volumed.cli.api._wire import decode, encode
from volumed.resources import (
    DEFINITIONS,
    MetaKeySpec,
    StaticKeySpec,
    VolumeConfigSpec,
    VolumeKeySecretsSpec,
    VolumeStatusDefinition,
    VolumeStatusSpec,
)
from volumed.runtime import Spec


class _Plain(Spec):
    name: str = ""
    token: SecretStr = SecretStr("")


class _Nested(Spec):
    inner: dict[str, tuple[StaticKeySpec, ...]] | None = None


class _Optional(Spec):
    inner: MetaKeySpec | None = None


def test_holds_secrets() -> None:
    assert holds_secrets(VolumeKeySecretsSpec)
    assert holds_secrets(MetaKeySpec)
    assert holds_secrets(_Nested)
    assert holds_secrets(_Optional)
    assert not holds_secrets(VolumeStatusSpec)
    assert not holds_secrets(VolumeConfigSpec)
    assert not holds_secrets(_Plain)  # pydantic secret fields dump as "**********"
    # The registry's own flag and the static check agree on every volumed type.
    assert {d.type for d in DEFINITIONS if d.sensitive} == {
        d.type for d in DEFINITIONS if holds_secrets(d.spec_model)
    }


def test_secret_fields_of_plain_specs_are_masked() -> None:
    from volumed.runtime import ResourceDefinition

    definition = ResourceDefinition(type="Plains.test.volumed.dev", spec_model=_Plain, default_namespace="t")
    wire = resource_to_wire(definition.new("a", _Plain(name="n", token=SecretStr("hunter2"))))
    assert wire["spec"] == {"name": "n", "token": "**********"}


def test_encode_decode_round_trip() -> None:
    message = {"event": "created", "text": "line\nbreak ünïcode"}
    line = encode(message)
    assert line.count(b"\n") == 1
    assert line.endswith(b"\n")
    assert decode(line) == message


@pytest.mark.parametrize(
    ("line", "error"), [(b"{", "not a JSON line"), (b"[1]\n", "expected a JSON object, got list")]
)
def test_decode_rejects(line: bytes, error: str) -> None:
    with pytest.raises(ApiProtocolError, match=error):
        decode(line)


def test_type_info_round_trip() -> None:
    info = TypeInfo.from_wire(definition_to_wire(VolumeStatusDefinition, "block"))
    assert info.type == "VolumeStatuses.block.volumed.dev"
    assert info.namespace == "block"
    assert info.aliases == ("vs", "volumestatus", "volumestatuses")
    assert info.print_columns[0] == ("Phase", "phase")


@pytest.mark.parametrize(
    "message", [None, [], {"type": "x"}, {"type": "x", "namespace": "n", "aliases": [], "print_columns": [1]}]
)
def test_type_info_rejects_malformed(message: object) -> None:
    with pytest.raises(ApiProtocolError, match=r"^malformed type description from the server"):
        TypeInfo.from_wire(message)

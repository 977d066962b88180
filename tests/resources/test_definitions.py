"""The resource types of the volume subsystem: registered once, shown as tables, secrets kept secret."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

import volumed.resources as res
from volumed.runtime import Resource, ResourceDefinition

SECRET = b"correct horse battery staple"


def test_every_definition_is_in_the_registry_once() -> None:
    registry = res.registry()
    assert len(registry) == len(res.DEFINITIONS)
    for definition in res.DEFINITIONS:
        assert registry.get(definition.type) is definition
        for alias in definition.aliases:
            assert registry.get(alias) is definition


def test_exports_are_unique_and_complete() -> None:
    assert len(res.__all__) == len(set(res.__all__))
    for name in res.__all__:
        assert hasattr(res, name), name


@pytest.mark.parametrize(
    ("definition", "sensitive"),
    [
        (res.EncryptionSaltDefinition, True),
        (res.VolumeKeySecretsDefinition, True),
        (res.MetaKeyDefinition, True),
        (res.VolumeConfigDefinition, False),
        (res.VolumeStatusDefinition, False),
        (res.SystemInformationDefinition, False),
    ],
)
def test_secret_holders_are_sensitive(definition: ResourceDefinition[Any], sensitive: bool) -> None:
    assert definition.sensitive is sensitive


def test_secrets_never_show_in_repr_or_json() -> None:
    salt = res.EncryptionSaltSpec(disk_salt=SECRET)
    keys = res.VolumeKeySecretsSpec(static_keys=(res.StaticKeySpec(slot=0, passphrase=SECRET),))
    meta = res.MetaKeySpec(value=SECRET.decode())
    for spec in (salt, keys, meta):
        resource = Resource.new("block", "X.block.volumed.dev", "id", spec)
        for text in (repr(spec), str(spec), repr(resource), spec.model_dump_json()):
            assert SECRET.decode() not in text
    assert keys.passphrase(0) == SECRET
    assert keys.passphrase(1) is None


def test_specs_are_frozen() -> None:
    status = res.VolumeStatusSpec()
    with pytest.raises(pydantic.ValidationError):
        status.phase = res.VolumePhase.READY  # type: ignore[misc]


def test_volume_status_columns() -> None:
    status = res.VolumeStatusDefinition.new(
        "STATE",
        res.VolumeStatusSpec(
            phase=res.VolumePhase.READY,
            location="/dev/vda3",
            mount_location="/dev/mapper/luks2-STATE",
            filesystem="xfs",
            encryption_provider="luks2",
            encryption_slot=0,
        ),
    )
    values = {c.name: c.value(status) for c in res.VolumeStatusDefinition.print_columns}
    assert values == {
        "Phase": "ready",
        "Location": "/dev/vda3",
        "Mount": "/dev/mapper/luks2-STATE",
        "Size": "0",
        "Filesystem": "xfs",
        "Encryption": "luks2",
        "Slot": "0",
        "Error": "",
    }


def test_key_status_ready_slots() -> None:
    spec = res.VolumeKeyStatusSpec(
        keys=(
            res.KeyReadinessSpec(slot=0, kind="nodeID", ready=True),
            res.KeyReadinessSpec(slot=1, kind="kms", ready=False, reason="KMS unreachable"),
            res.KeyReadinessSpec(slot=2, kind="static", ready=True),
        )
    )
    assert spec.ready_slots == (0, 2)
    # `volumed get` renders columns from the wire form, where a plain property was missing: an empty column.
    assert spec.model_dump(mode="json")["ready_slots"] == [0, 2]


@pytest.mark.parametrize("definition", res.DEFINITIONS, ids=lambda d: d.type)
def test_print_columns_name_serialized_fields(definition: ResourceDefinition[Any]) -> None:
    """Columns are read from the serialized spec, so each path must start at a field that is serialized."""
    model = definition.spec_model
    serialized = set(model.model_fields) | set(model.model_computed_fields)
    for column in definition.print_columns:
        assert column.path.split(".")[0] in serialized, f"{definition.type}: column {column.name!r}"

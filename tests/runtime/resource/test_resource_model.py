"""The resource model: metadata, pointers, frozen specs, sensitive reprs, definitions, registry, queries."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import BaseModel, ValidationError

from volumed.runtime import (
    DefinitionConflictError,
    FrozenMap,
    IDQuery,
    Kind,
    LabelQuery,
    LabelTerm,
    Metadata,
    Phase,
    Pointer,
    PrintColumn,
    Resource,
    ResourceDefinition,
    ResourceRegistry,
    SensitiveSpec,
    Spec,
    UnknownResourceTypeError,
)

TYPE = "Volumes.test.volumed.dev"


class Location(Spec):
    device: str = ""


class Volume(Spec):
    phase: Phase = Phase.RUNNING
    location: Location = Location()
    size: int = 0


class Secret(SensitiveSpec):
    key: bytes


class Mutable(BaseModel):
    value: int = 0


def test_metadata_normalises_labels_and_finalizers() -> None:
    md = Metadata("ns", TYPE, "a", labels={"k": "v"}, finalizers=["f"])  # type: ignore[arg-type]
    assert isinstance(md.labels, FrozenMap)
    assert md.labels == {"k": "v"}
    assert md.finalizers == ("f",)
    assert md.pointer == Pointer("ns", TYPE, "a")
    assert md.kind == Kind("ns", TYPE)
    assert (md.version, md.phase) == (0, Phase.RUNNING)


@pytest.mark.parametrize(("field", "value"), [("namespace", ""), ("type", ""), ("id", ""), ("version", -1)])
def test_metadata_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    kwargs: dict[str, object] = {"namespace": "ns", "type": TYPE, "id": "a", field: value}
    with pytest.raises(ValueError, match=field):
        Metadata(**kwargs)  # type: ignore[arg-type]


def test_metadata_and_resource_are_frozen() -> None:
    r = Resource.new("ns", TYPE, "a", Volume(size=1), labels={"x": "1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.metadata.version = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.spec = Volume()  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.metadata.labels["x"] = "2"  # type: ignore[index]
    with pytest.raises(ValueError, match="frozen"):
        r.spec.size = 5  # type: ignore[misc]


def test_frozen_map_is_a_value() -> None:
    a = FrozenMap({"k": "v"})
    assert a == FrozenMap({"k": "v"}) == {"k": "v"}
    assert hash(a) == hash(FrozenMap({"k": "v"}))
    assert FrozenMap.of(a) is a
    assert a.set("z", "1") == {"k": "v", "z": "1"}
    assert a.without("k") == {}
    assert a.without("missing") is a
    with pytest.raises(TypeError, match="str to str"):
        FrozenMap({"k": 1})  # type: ignore[dict-item]
    with pytest.raises(AttributeError):
        a.x = 1  # type: ignore[attr-defined]


def test_resource_requires_a_frozen_pydantic_spec() -> None:
    with pytest.raises(TypeError, match="must be frozen"):
        Resource.new("ns", TYPE, "a", Mutable())  # type: ignore[type-var]
    with pytest.raises(TypeError, match="pydantic model"):
        Resource(Metadata("ns", TYPE, "a"), {"not": "a model"})  # type: ignore[type-var]


def test_equality_is_metadata_then_spec() -> None:
    a = Resource.new("ns", TYPE, "a", Volume(size=1))
    assert a == Resource.new("ns", TYPE, "a", Volume(size=1))
    assert a != a.with_spec(Volume(size=2))
    assert a != a.with_metadata(labels={"k": "v"})
    assert [f.name for f in dataclasses.fields(Resource)] == ["metadata", "spec"]


def test_sensitive_spec_never_shows_values() -> None:
    secret = Resource.new("ns", "Keys.test.volumed.dev", "k", Secret(key=b"hunter2-secret"))
    for text in (repr(secret), str(secret), repr(secret.spec), str(secret.spec), f"{secret.spec}"):
        assert "hunter2" not in text
        assert "redacted" in text


def test_sensitive_spec_validation_errors_do_not_quote_input() -> None:
    with pytest.raises(ValidationError) as info:
        Secret(key=["hunter2-secret"])  # type: ignore[arg-type]
    assert "hunter2" not in str(info.value)
    assert Secret.model_config.get("frozen") is True


def test_definition_validates_and_reports_sensitivity() -> None:
    d = ResourceDefinition(TYPE, Volume, "default", aliases=("vol",))
    assert not d.sensitive
    assert d.names == (TYPE, "Volumes", "vol")
    assert ResourceDefinition("Keys.test.volumed.dev", Secret, "secrets").sensitive
    with pytest.raises(ValueError, match="plural dotted name"):
        ResourceDefinition("volume", Volume, "default")
    with pytest.raises(TypeError, match="frozen pydantic model"):
        ResourceDefinition(TYPE, Mutable, "default")  # type: ignore[type-var]
    with pytest.raises(ValueError, match="default namespace"):
        ResourceDefinition(TYPE, Volume, "")
    made = d.new("v1", Volume(size=3), labels={"a": "b"})
    assert made.pointer == Pointer("default", TYPE, "v1")
    assert made.metadata.labels == {"a": "b"}
    with pytest.raises(TypeError, match="must be a Volume"):
        d.new("v1", Location())  # type: ignore[arg-type]


def test_print_columns_follow_dotted_paths() -> None:
    r = Resource.new("ns", TYPE, "a", Volume(size=3, location=Location(device="/dev/sda3")))
    assert PrintColumn("Device", "location.device").value(r) == "/dev/sda3"
    assert PrintColumn("Phase", "phase").value(r) == "running"
    assert PrintColumn("Size", "size").value(r) == "3"
    assert PrintColumn("Missing", "location.nothing").value(r) == ""


def test_registry_lookup_by_type_short_name_and_alias() -> None:
    d = ResourceDefinition(TYPE, Volume, "default", aliases=("vol",))
    registry = ResourceRegistry([d])
    registry.register(d)  # the same definition twice is fine
    for name in (TYPE, "volumes", "Volumes", "VOL"):
        assert registry.get(name) is d
    assert registry.spec_model(TYPE) is Volume
    assert TYPE in registry
    assert "nope" not in registry
    assert list(registry) == [d]
    assert len(registry) == 1
    with pytest.raises(UnknownResourceTypeError, match="unknown resource type 'nope'"):
        registry.get("nope")
    with pytest.raises(UnknownResourceTypeError):
        registry.spec_model("Volumes")  # exact type names only
    with pytest.raises(DefinitionConflictError, match="already registered"):
        registry.register(ResourceDefinition(TYPE, Location, "default"))
    with pytest.raises(DefinitionConflictError, match="'vol'"):
        registry.register(ResourceDefinition("Others.test.volumed.dev", Volume, "default", aliases=("vol",)))


def test_label_terms_and_queries() -> None:
    labels = {"env": "prod", "tier": "db"}
    assert LabelTerm.equal("env", "prod").matches(labels)
    assert not LabelTerm.equal("env", "dev").matches(labels)
    assert LabelTerm.exists("tier").matches(labels)
    assert LabelTerm.not_exists("zone").matches(labels)
    assert LabelTerm.in_("tier", ["db", "web"]).matches(labels)
    assert not LabelTerm.in_("zone", ["a"]).matches(labels)
    assert LabelQuery.equal(env="prod", tier="db").matches(labels)
    assert not LabelQuery.of(LabelTerm.exists("env"), LabelTerm.exists("zone")).matches(labels)
    assert LabelQuery().matches({})
    with pytest.raises(ValueError, match="label term key"):
        LabelTerm.exists("")


def test_id_query_searches_and_reports_bad_patterns() -> None:
    assert IDQuery("sda").matches("dev-sda3")
    assert not IDQuery("^sda$").matches("dev-sda3")
    with pytest.raises(ValueError, match="invalid id query pattern"):
        IDQuery("(")


def test_pointer_and_kind() -> None:
    kind = Kind("ns", TYPE)
    assert kind.pointer("a") == Pointer("ns", TYPE, "a")
    assert Pointer("ns", TYPE, "a").kind == kind
    assert str(Pointer("ns", TYPE, "a")) == f"ns/{TYPE}/a"
    assert len({Pointer("ns", TYPE, "a"), Pointer("ns", TYPE, "a")}) == 1
    with pytest.raises(ValueError, match="resource id"):
        Pointer("ns", TYPE, "")

"""Values built through draft classes are ordinary, immutable instances of their frozen dataclass."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass

import pytest

from volumed.runtime import EventType, Metadata, Phase, Pointer, Resource, Spec
from volumed.runtime._frozen import draft_class
from volumed.runtime.resource._pointer import trusted_pointer
from volumed.runtime.state import Event
from volumed.runtime.state._events import make_event

TYPE = "Things.test.volumed.dev"


class Thing(Spec):
    size: int = 0


def built_values() -> list[tuple[object, object]]:
    """(fast-built, constructor-built) pairs that must be indistinguishable."""
    md = Metadata.new("ns", TYPE, "a", labels={"k": "v"})
    slow_md = Metadata("ns", TYPE, "a", labels={"k": "v"})  # type: ignore[arg-type]
    resource = Resource.new("ns", TYPE, "a", Thing(size=1), labels={"k": "v"})
    return [
        (md, slow_md),
        (trusted_pointer("ns", TYPE, "a"), Pointer("ns", TYPE, "a")),
        (resource, Resource(slow_md, Thing(size=1))),
        (make_event(EventType.CREATED, resource), Event(EventType.CREATED, resource)),
    ]


@pytest.mark.parametrize(("fast", "slow"), built_values(), ids=lambda v: type(v).__name__)
def test_fast_built_values_are_the_frozen_class(fast: object, slow: object) -> None:
    assert type(fast) is type(slow)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    field = dataclasses.fields(fast)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(fast, field, "changed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(fast, field)
    assert copy.deepcopy(fast) == fast
    assert pickle.loads(pickle.dumps(fast)) == fast


def test_replace_works_on_fast_built_metadata() -> None:
    md = Metadata.new("ns", TYPE, "a").replace(version=3, phase=Phase.TEARING_DOWN)
    assert (md.version, md.phase, type(md)) == (3, Phase.TEARING_DOWN, Metadata)


def test_a_draft_class_needs_a_slotted_class() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        x: int

    with pytest.raises(TypeError, match="slotted"):
        draft_class(NoSlots)

"""docs/resources.md is generated from the resource definitions and the built-in controllers' declarations
(volumed/_reference.py); these tests fail when the page is stale or a field has no meaning to show."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from volumed import resources
from volumed._reference import REGENERATE, missing_meanings, reference, render_reference, spec_fields
from volumed.runtime import PrintColumn, ResourceDefinition, SensitiveSpec, Spec
from volumed.runtime.controller import Controller, ControllerContext, Input, InputKind, Output, Runtime
from volumed.runtime.state import in_memory_state

PAGE = Path(__file__).resolve().parents[2] / "docs" / "resources.md"


def test_the_page_is_up_to_date() -> None:
    assert PAGE.read_text(encoding="utf-8") == reference(), (
        f"{PAGE} is stale (a resource definition, spec field or controller declaration changed): "
        f"regenerate it with {REGENERATE}"
    )


def test_every_field_and_enum_value_of_the_subsystem_has_a_meaning() -> None:
    missing = missing_meanings(definition.spec_model for definition in resources.DEFINITIONS)
    assert missing == [], (
        "describe these in the spec's Attributes: section, an attribute docstring or Field(description=...), "
        f"then regenerate docs/resources.md with {REGENERATE}: {missing}"
    )


def test_the_page_names_every_type_with_its_publisher() -> None:
    page = PAGE.read_text(encoding="utf-8")
    assert {d.type for d in resources.DEFINITIONS} == {d.type for d in resources.registry()}
    for definition in resources.DEFINITIONS:
        assert f"\n### {definition.type}\n" in page
    assert (
        "| read by | MetaStore (id `STATE` only), BootPhase, KeySlotSyncer, Mounter (strong),"
        " SwapActivator (strong) |"
    ) in page
    assert "| published by | VolumeFormatter (exclusive) |" in page


class _ColourSpec(Spec):
    """A colour.

    Attributes:
        name: from the Attributes section.
    """

    name: str
    hex: str = Field(default="#000", description="from the field's description")
    shade: int = 0
    """From the attribute docstring."""


class _KeySpec(SensitiveSpec):
    key: str = ""


COLOURS = ResourceDefinition(
    type="Colours.paint.example.com",
    spec_model=_ColourSpec,
    default_namespace="paint",
    aliases=("colour",),
    print_columns=(PrintColumn("Hex", "hex"),),
)
KEYS = ResourceDefinition(type="Keys.paint.example.com", spec_model=_KeySpec, default_namespace="paint")


class _Mixer(Controller):
    name = "Mixer"
    inputs = (Input("paint", KEYS.type, id="k", kind=InputKind.STRONG),)
    outputs = (Output(COLOURS.type, namespace="paint"),)

    async def reconcile(self, ctx: ControllerContext) -> None:
        pass


def test_the_renderer_takes_meanings_from_descriptions_docstrings_and_attributes_sections() -> None:
    fields = {f.name: f for f in spec_fields(_ColourSpec)}
    assert fields["name"].meaning == "from the Attributes section."
    assert fields["hex"].meaning == "from the field's description"
    assert fields["shade"].meaning == "From the attribute docstring."
    assert (fields["name"].default, fields["hex"].default, fields["shade"].type) == (
        "required",
        '`"#000"`',
        "int",
    )
    assert missing_meanings([_KeySpec]) == ["_KeySpec.key"]

    runtime = Runtime(in_memory_state())
    runtime.register(_Mixer())
    page = render_reference([KEYS, COLOURS], runtime.graph(), {"paint": "Paint."})
    assert "| `paint` | Paint. | [Colours](#colourspaintexamplecom), [Keys](#keyspaintexamplecom) |" in page
    assert "| published by | Mixer (exclusive) |" in page
    assert "| read by | Mixer (id `k` only, strong) |" in page
    assert "| sensitive | yes: never served by `volumed get`/`watch` |" in page
    assert "| columns | Hex (`hex`) |" in page


def test_a_model_not_used_yet_shows_its_computed_field_s_type() -> None:
    """Specs are built on first use; the page showed `PydanticUndefined` for a computed field of a spec no
    code had used yet, and its real type once one had (the full test run failed, a lone run passed)."""
    from pydantic import computed_field

    class Unused(Spec):
        """A spec nobody validated yet.

        Attributes:
            slots: the slots.
        """

        slots: tuple[int, ...] = ()

        @computed_field  # type: ignore[prop-decorator]
        @property
        def first(self) -> tuple[int, ...]:
            """The first slot."""
            return self.slots[:1]

    assert [(f.name, f.type) for f in spec_fields(Unused)] == [
        ("slots", "tuple[int, ...]"),
        ("first", "tuple[int, ...]"),
    ]

import pytest

from volumed.runtime.controller import Input, InputKind, Output, OutputKind


def test_input_matching() -> None:
    whole = Input("ns", "A.x")
    one = Input("ns", "A.x", id="1", kind=InputKind.STRONG)
    assert whole.matches("ns", "A.x", "anything")
    assert whole.matches("ns", "A.x")
    assert not whole.matches("other", "A.x")
    assert one.matches("ns", "A.x", "1")
    assert not one.matches("ns", "A.x", "2")
    assert one.matches("ns", "A.x")  # the kind as a whole overlaps


def test_output_defaults() -> None:
    out = Output("A.x")
    assert out.kind is OutputKind.EXCLUSIVE
    assert out.namespace == "default"
    assert out.matches("default", "A.x")
    assert not out.matches("other", "A.x")


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Input("", "A.x"), "Input.namespace"),
        (lambda: Input("ns", ""), "Input.type"),
        (lambda: Input("ns", "A.x", id=""), "Input.id"),
        (lambda: Output("", namespace="ns"), "Output.type"),
        (lambda: Output("A.x", namespace=""), "Output.namespace"),
    ],
)
def test_bad_declarations_name_the_field(factory: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()  # type: ignore[operator]


def test_kind_must_be_the_enum() -> None:
    with pytest.raises(TypeError, match=r"Input\.kind"):
        Input("ns", "A.x", kind="weak")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Output\.kind"):
        Output("A.x", kind="shared")  # type: ignore[arg-type]

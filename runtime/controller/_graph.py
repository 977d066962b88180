"""The dependency graph of a runtime (controllers <-> resource types), exported as Graphviz DOT or Mermaid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from ._io import Input, InputKind, Output, OutputKind

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


@final
@dataclass(frozen=True, slots=True)
class ControllerNode:
    """One controller of the graph with its declared inputs and outputs."""

    name: str
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]


@final
@dataclass(frozen=True, slots=True)
class DependencyGraph:
    """Which controller reads which resource types and writes which others.

    Edges point the way data flows: input type -> controller -> output type. Useful to see chains, to spot a
    type nobody writes, and for documentation (`to_mermaid` renders on GitHub, `to_dot` through Graphviz).
    """

    controllers: tuple[ControllerNode, ...]

    @classmethod
    def build(cls, controllers: Iterable[tuple[str, Sequence[Input], Sequence[Output]]]) -> DependencyGraph:
        """Build the graph from (name, inputs, outputs) triples, in registration order."""
        return cls(tuple(ControllerNode(name, tuple(ins), tuple(outs)) for name, ins, outs in controllers))

    def resource_types(self) -> list[tuple[str, str]]:
        """Every (namespace, type) that appears as an input or output, sorted."""
        kinds: set[tuple[str, str]] = set()
        for node in self.controllers:
            kinds.update((i.namespace, i.type) for i in node.inputs)
            kinds.update((o.namespace, o.type) for o in node.outputs)
        return sorted(kinds)

    def _ids(self) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
        controller_ids = {node.name: f"c{index}" for index, node in enumerate(self.controllers)}
        type_ids = {kind: f"t{index}" for index, kind in enumerate(self.resource_types())}
        return controller_ids, type_ids

    def to_dot(self) -> str:
        """Render as a Graphviz digraph (controllers as boxes, resource types as ellipses)."""
        controller_ids, type_ids = self._ids()
        lines = ["digraph volumed {", "  rankdir=LR;", '  node [fontname="sans-serif"];']
        for node in self.controllers:
            lines.append(f"  {controller_ids[node.name]} [shape=box, label={_dot_quote(node.name)}];")
        for (namespace, type_), type_id in type_ids.items():
            lines.append(f"  {type_id} [shape=ellipse, label={_dot_quote(f'{namespace}/{type_}')}];")
        for node in self.controllers:
            cid = controller_ids[node.name]
            for inp in node.inputs:
                style = _DOT_INPUT_STYLE[inp.kind]
                label = _dot_quote(_input_label(inp))
                tid = type_ids[(inp.namespace, inp.type)]
                lines.append(f"  {tid} -> {cid} [label={label}, style={style}];")
            for out in node.outputs:
                style = "bold" if out.kind is OutputKind.EXCLUSIVE else "solid"
                label = _dot_quote(out.kind.value)
                tid = type_ids[(out.namespace, out.type)]
                lines.append(f"  {cid} -> {tid} [label={label}, style={style}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """Render as a Mermaid flowchart (controllers as rectangles, resource types as stadiums)."""
        controller_ids, type_ids = self._ids()
        lines = ["flowchart LR"]
        for node in self.controllers:
            lines.append(f"  {controller_ids[node.name]}[{_mermaid_quote(node.name)}]")
        for (namespace, type_), type_id in type_ids.items():
            lines.append(f"  {type_id}([{_mermaid_quote(f'{namespace}/{type_}')}])")
        for node in self.controllers:
            cid = controller_ids[node.name]
            for inp in node.inputs:
                arrow = _MERMAID_INPUT_ARROW[inp.kind]
                label = _mermaid_quote(_input_label(inp))
                lines.append(f"  {type_ids[(inp.namespace, inp.type)]} {arrow}|{label}| {cid}")
            for out in node.outputs:
                label = _mermaid_quote(out.kind.value)
                lines.append(f"  {cid} -->|{label}| {type_ids[(out.namespace, out.type)]}")
        return "\n".join(lines) + "\n"


_DOT_INPUT_STYLE = {InputKind.WEAK: "solid", InputKind.STRONG: "bold", InputKind.DESTROY_READY: "dashed"}
_MERMAID_INPUT_ARROW = {InputKind.WEAK: "-->", InputKind.STRONG: "==>", InputKind.DESTROY_READY: "-.->"}


def _input_label(inp: Input) -> str:
    return inp.kind.value if inp.id is None else f"{inp.kind.value} id={inp.id}"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _mermaid_quote(text: str) -> str:
    # Mermaid has no backslash escapes: quotes and the characters that end a label become HTML entities.
    escaped = text.replace("&", "#amp;").replace('"', "#quot;").replace("|", "#124;").replace("\n", " ")
    return f'"{escaped}"'

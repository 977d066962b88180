"""How `volumed get` and `volumed watch` print resources: tables (plain columns), YAML documents, JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, final

from volumed.cli._columns import column_widths as column_widths  # `watch` and the observe views use it
from volumed.cli._columns import format_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._client import WatchEvent
    from ._wire import TypeInfo, WireObject

OUTPUT_FORMATS: Final = ("table", "yaml", "json")

_FIXED_HEADERS: Final = ("NAMESPACE", "ID", "VERSION")


def cell(value: object) -> str:
    """A JSON value as table text: empty for null, lowercase booleans, lists joined by commas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(cell(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def column_value(spec: object, path: str) -> str:
    """The text of a print column: the dotted ``path`` walked through the spec ("" when a step is missing)."""
    current: Any = spec
    for step in path.split("."):
        if not isinstance(current, dict) or step not in current:
            return ""
        current = current[step]
    return cell(current)


def headers(info: TypeInfo) -> list[str]:
    """Table headers: namespace, id and version, then the type's print columns in upper case."""
    return [*_FIXED_HEADERS, *(name.upper() for name, _path in info.print_columns)]


def row(info: TypeInfo, resource: WireObject) -> list[str]:
    """One resource as table cells, in `headers` order."""
    metadata = resource.get("metadata", {})
    spec = resource.get("spec", {})
    fixed = [cell(metadata.get("namespace")), cell(metadata.get("id")), cell(metadata.get("version"))]
    return [*fixed, *(column_value(spec, path) for _name, path in info.print_columns)]


def render_rows(header: Sequence[str] | None, rows: Sequence[Sequence[str]], widths: Sequence[int]) -> str:
    """Rows (and an optional header) as aligned columns, each at least ``widths`` wide."""
    return "\n".join(format_rows(header, rows, widths))


def render_table(info: TypeInfo, items: Sequence[WireObject]) -> str:
    """Resources as a table: NAMESPACE, ID, VERSION and the type's print columns."""
    header = headers(info)
    rows = [row(info, item) for item in items]
    return render_rows(header, rows, column_widths(header, rows))


def render_yaml(items: Sequence[WireObject]) -> str:
    """Each resource as its own YAML document (``---`` before each), keys in wire order."""
    import yaml

    return yaml.safe_dump_all(items, sort_keys=False, explicit_start=True, allow_unicode=True).rstrip("\n")


def render_json(items: Sequence[WireObject]) -> str:
    """Each resource as an indented JSON object, one after the other (a stream, as ``jq`` reads it)."""
    return "\n".join(json.dumps(item, indent=2, ensure_ascii=False) for item in items)


@final
class WatchPrinter:
    """Turns watch events into output text, one chunk per event (None when nothing is to be printed yet).

    Tables get an EVENT column; the current items are held back until ``bootstrapped`` so they print as one
    aligned table, and later rows reuse its column widths. YAML prints one document and JSON one line per
    event, each with an ``event`` key in front of the resource.
    """

    def __init__(self, info: TypeInfo, output: str) -> None:
        self._info = info
        self._output = output
        self._header = ["EVENT", *headers(info)]
        self._bootstrap: list[list[str]] | None = []
        self._widths = [len(name) for name in self._header]

    def feed(self, event: WatchEvent) -> str | None:
        """The text to print for ``event``, or None."""
        if self._output == "table":
            return self._table(event)
        document: dict[str, Any] = {"event": event.type}
        if event.resource is not None:
            document.update(event.resource)
        if self._output == "json":
            return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        return render_yaml([document])

    def _table(self, event: WatchEvent) -> str | None:
        if event.type == "bootstrapped":
            rows, self._bootstrap = self._bootstrap or [], None
            self._widths = column_widths(self._header, rows)
            return render_rows(self._header, rows, self._widths)
        assert event.resource is not None
        cells = [event.type.upper(), *row(self._info, event.resource)]
        if self._bootstrap is not None:
            self._bootstrap.append(cells)
            return None
        return render_rows(None, [cells], self._widths)

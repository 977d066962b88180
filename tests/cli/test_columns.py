"""The CLI's plain columns (`volumed get`, `watch`, `meta dump`): text is printed as it is (rich took it as
markup: ``[tpm]`` vanished and ``[/var]`` raised MarkupError), control characters escaped, and the layout of
rich's borderless tables kept for ordinary text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from volumed.cli._columns import cell_width, column_widths, format_rows, printable
from volumed.cli.api import TypeInfo, render_table

INFO = TypeInfo(
    type="Things.test.volumed.dev", namespace="test", aliases=(), print_columns=(("Reason", "r"),)
)


def thing(reason: str) -> dict[str, object]:
    return {"metadata": {"namespace": "test", "id": "one", "version": 1}, "spec": {"r": reason}}


def test_text_that_looks_like_markup_is_printed_as_it_is() -> None:
    for reason in ("[tpm] no TPM", "mount [/var] failed", "see [link=x]y", "a[b]c"):
        assert render_table(INFO, [thing(reason)]).splitlines()[1] == f"test       one  1        {reason}"


def test_control_characters_are_escaped() -> None:
    line = render_table(INFO, [thing("\x1b[2Jgone\nnext\ttab")]).splitlines()[1]
    assert line.endswith("\\x1b[2Jgone\\nnext\\ttab")
    assert printable("plain text") == "plain text"


def test_wide_characters_take_two_cells() -> None:
    assert cell_width("日本") == 4
    assert cell_width("e\u0301") == 1
    assert format_rows(
        ["A", "B"], [["日本", "x"], ["e", "y"]], column_widths(["A", "B"], [["日本", "x"]])
    ) == [
        "A     B",
        "日本  x",
        "e     y",
    ]


def test_right_aligned_columns() -> None:
    assert format_rows(["N", "SIZE"], [["a", "5"], ["b", "123"]], [1, 4], right={1}) == [
        "N  SIZE",
        "a     5",
        "b   123",
    ]


def rich_rows(header: list[str], rows: list[list[str]], widths: list[int]) -> list[str]:
    """What the tables printed with rich (before), markup off: the reference layout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False)
    for name, width in zip(header, widths, strict=True):
        table.add_column(name, no_wrap=True, min_width=width, header_style="", overflow="ignore")
    for cells in rows:
        table.add_row(*cells)
    total = sum(max([w, *(cell_width(c[i]) for c in [header, *rows])]) for i, w in enumerate(widths))
    console = Console(width=total + 2 * len(widths) + 1, color_system=None, markup=False, highlight=False)
    with console.capture() as capture:
        console.print(table)
    return [line.rstrip() for line in capture.get().splitlines()]


_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=12) | st.text(
    st.sampled_from("aé日本語ÄΩ-_ /"), min_size=1, max_size=8
)


@given(st.integers(1, 4).flatmap(lambda n: st.lists(st.lists(_TEXT, min_size=n, max_size=n), min_size=2)))
def test_the_layout_is_rich_borderless_tables(table: list[list[str]]) -> None:
    header, rows = table[0], table[1:]
    widths = column_widths(header, rows)
    assert format_rows(header, rows, widths) == rich_rows(header, rows, widths)

"""Every `volumed ...` command shown in docs/operations.md exists, with the options and choices it uses.

The commands are resolved against the real click tree (subcommand by subcommand) and each option is looked up
on the command it belongs to, so a renamed command or flag breaks this test, not an operator's recovery.
Also: docs/index.md links every page in docs/.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from volumed.cli._main import volumed

DOCS = Path(__file__).resolve().parents[2] / "docs"
OPERATIONS = DOCS / "operations.md"
_FENCE = re.compile(r"```(?P<lang>\w*)\n(?P<body>.*?)```", re.DOTALL)
_INLINE = re.compile(r"`(volumed [^`]+)`")


def _shown_commands(text: str) -> list[str]:
    """Commands typed at a root prompt in console blocks, and inline `volumed ...` spans in the prose."""
    commands: list[str] = []
    for block in _FENCE.finditer(text):
        if block.group("lang") != "console":
            continue
        for line in block.group("body").splitlines():
            line = line.strip()  # blocks inside list items are indented
            if line.startswith("# volumed "):
                commands.append(line[2:])
    prose = _FENCE.sub("", text)
    commands.extend(" ".join(span.split()) for span in _INLINE.findall(prose))
    return commands


def _words(command: str) -> list[str]:
    """The words of the volumed invocation alone: no trailing comment, pipe or second command."""
    words: list[str] = []
    for word in shlex.split(command, comments=True):
        if word in ("|", ";", "&&") or word.endswith(";"):
            words.append(word.rstrip(";"))
            break
        words.append(word)
    return [w for w in words if w]


def _resolve(words: list[str]) -> tuple[click.Command, list[str], str]:
    command: click.Command = volumed
    path = ["volumed"]
    rest = words[1:]
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        ctx = click.Context(command, info_name=path[-1])
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            pytest.fail(f"`{' '.join(path)} {rest[0]}` is not a volumed command")
        command = sub
        path.append(rest.pop(0))
    return command, rest, " ".join(path)


def _check_options(command: click.Command, rest: list[str], where: str) -> None:
    options: dict[str, click.Parameter | None] = {"--help": None, "-h": None}  # help is added at parse time
    for declared in command.params:
        if isinstance(declared, click.Option):
            for name in (*declared.opts, *declared.secondary_opts):
                options[name] = declared
    for i, word in enumerate(rest):
        if not word.startswith("-") or word == "-":
            continue
        name, _, inline = word.partition("=")
        assert name in options, f"`{where}` has no option {name} (docs/operations.md)"
        param = options[name]
        value = inline or (rest[i + 1] if i + 1 < len(rest) else "")
        if param is None or not value:
            continue
        if isinstance(param.type, click.Choice) and not getattr(param, "is_flag", False):
            if value.isupper() or "|" in value:  # a placeholder, or the list of choices itself
                continue
            assert value in param.type.choices, f"`{where} {name} {value}`: not one of {param.type.choices}"


def test_operations_commands_exist() -> None:
    commands = _shown_commands(OPERATIONS.read_text(encoding="utf-8"))
    assert len(commands) >= 30, f"found only {len(commands)} commands in {OPERATIONS}: did the format change?"
    seen: set[str] = set()
    for command in commands:
        words = _words(command)
        if any("<" in word for word in words):  # `volumed <command> --help`
            continue
        resolved, rest, where = _resolve(words)
        _check_options(resolved, rest, where)
        seen.add(where)
    for expected in (
        "volumed run",
        "volumed get",
        "volumed apply-config",
        "volumed wipe",
        "volumed luks dump",
        "volumed meta dump",
        "volumed disk create",
        "volumed config validate",
    ):
        assert expected in seen, f"docs/operations.md no longer shows `{expected}`"


def test_a_wrong_command_or_option_is_caught() -> None:
    with pytest.raises(pytest.fail.Exception):
        _resolve(_words("volumed luks frobnicate /dev/sda3"))
    command, rest, where = _resolve(_words("volumed wipe /dev/sda --labels EPHEMERAL"))
    with pytest.raises(AssertionError, match="has no option --labels"):
        _check_options(command, rest, where)
    command, rest, where = _resolve(_words("volumed apply-config f.yaml --mode later"))
    with pytest.raises(AssertionError, match="not one of"):
        _check_options(command, rest, where)


def test_index_links_every_doc() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    targets = set(re.findall(r"\]\(([^)#]+\.md)(?:#[^)]*)?\)", index))
    missing = sorted(t for t in targets if not (DOCS / t).is_file())
    assert not missing, f"docs/index.md links pages that do not exist: {missing}"
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert pages <= targets, f"docs/index.md does not link {sorted(pages - targets)}"

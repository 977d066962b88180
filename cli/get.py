"""`volumed get TYPE [ID]` and `volumed watch TYPE [ID]`: read the resources of a running `volumed run`;
`volumed metrics` and `volumed graph`: its controllers' counters and dependency graph."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from volumed.cli.api._constants import DEFAULT_SOCKET, SOCKET_ENV

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR = 1
EXIT_NO_DAEMON = 4
EXIT_INTERRUPTED = 130


class _BadArguments(click.UsageError):
    exit_code = EXIT_ERROR


class _Command(click.Command):
    """Bad arguments exit with 1 (click's default is 2), like every refused request of these commands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            raise _BadArguments(error.format_message(), error.ctx) from None


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


_EXIT_HELP = (
    f"Exit status: 0 ok, 1 bad arguments, unknown or sensitive type, or not found, 4 no volumed "
    f"listening. The socket is {DEFAULT_SOCKET} unless --socket or ${SOCKET_ENV} says otherwise."
)

_type = click.argument("type_name", metavar="TYPE")
_id = click.argument("resource_id", metavar="[ID]", required=False)
_namespace = click.option(
    "-n", "--namespace", default=None, metavar="NS", help="Namespace to read (default: the type's own)."
)
_socket = click.option(
    "--socket",
    "socket_path",
    envvar=SOCKET_ENV,
    show_envvar=True,
    default=str(DEFAULT_SOCKET),
    show_default=True,
    metavar="PATH",
    help="Unix socket of the running volumed.",
)


def _output(default_help: str) -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "yaml", "json"]),
        default="table",
        show_default=True,
        help=default_help,
    )


def _run_errors(error: Exception) -> NoReturn:
    from volumed.cli.api import ApiProtocolError, ApiRequestError, DaemonUnavailableError, WatchEndedError

    if isinstance(error, DaemonUnavailableError):
        _fail(str(error), EXIT_NO_DAEMON)
    if isinstance(error, (ApiRequestError, ApiProtocolError, WatchEndedError)):
        _fail(str(error))
    raise error


def _reader_went_away() -> NoReturn:
    """stdout is a pipe whose reader exited (``| head``): stop quietly, as command-line tools do."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
    raise SystemExit(EXIT_ERROR)


@click.command(cls=_Command, epilog=_EXIT_HELP)
@_type
@_id
@_output("table (NAMESPACE, ID, VERSION and the type's columns), yaml (one document per resource) or json.")
@_namespace
@_socket
def get(
    type_name: str, resource_id: str | None, output: str, namespace: str | None, socket_path: str
) -> None:
    """Show resources of TYPE (a type name or alias, e.g. volumestatuses or vs), or only ID.

    Sensitive types (key secrets, salts, META values) are never shown.
    """
    from volumed.cli.api import ApiClient, ApiError, render_json, render_table, render_yaml

    try:
        result = ApiClient(socket_path).get(type_name, resource_id, namespace=namespace)
    except ApiError as error:
        _run_errors(error)
    if output == "table" and not result.items:
        click.echo(f"No {result.type.type} found in namespace {result.type.namespace}.", err=True)
        return
    if not result.items:
        return
    if output == "table":
        text = render_table(result.type, result.items)
    else:
        text = render_yaml(result.items) if output == "yaml" else render_json(result.items)
    try:
        click.echo(text)
    except BrokenPipeError:
        _reader_went_away()


@click.command(cls=_Command, epilog=_EXIT_HELP)
@_type
@_id
@_output(
    "table (an EVENT column, then as `get`), yaml (one document per event) or json (one line per event)."
)
@_namespace
@_socket
def watch(
    type_name: str, resource_id: str | None, output: str, namespace: str | None, socket_path: str
) -> None:
    """Show resources of TYPE (or only ID) now, then every change until interrupted.

    The current items come first (as "created"), then "created", "updated" and "destroyed" events.
    """
    from volumed.cli.api import ApiClient, ApiError, WatchPrinter

    try:
        with ApiClient(socket_path).watch(type_name, resource_id, namespace=namespace) as events:
            printer = WatchPrinter(events.type, output)
            for event in events:
                text = printer.feed(event)
                if text is not None:
                    click.echo(text)
    except ApiError as error:
        _run_errors(error)
    except BrokenPipeError:
        _reader_went_away()
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None


_OBSERVE_HELP = (
    f"Exit status: 0 ok, 1 bad arguments or a refused request, 4 no volumed listening. The socket is "
    f"{DEFAULT_SOCKET} unless --socket or ${SOCKET_ENV} says otherwise."
)


def _echo(text: str) -> None:
    try:
        click.echo(text, nl=not text.endswith("\n"))
    except BrokenPipeError:
        _reader_went_away()


@click.command(cls=_Command, epilog=_OBSERVE_HELP)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "prometheus", "json"]),
    default="table",
    show_default=True,
    help="table, prometheus (the text exposition format, for node_exporter's textfile collector or a "
    "scrape proxy) or json (the API's answer).",
)
@_socket
def metrics(output: str, socket_path: str) -> None:
    """Show each controller's reconciles, errors, failure streak, wake-ups, reads, writes, queue length and
    reconcile durations.

    Names and numbers only: no resource value, no error text.
    """
    from volumed.cli.api import ApiClient, ApiError
    from volumed.cli.api._observe_render import render_prometheus, render_stats_table

    try:
        controllers = ApiClient(socket_path).stats()
        if output == "prometheus":
            text = render_prometheus(controllers)
        elif output == "json":
            import json

            text = json.dumps({"controllers": controllers}, indent=2)
        else:
            text = render_stats_table(controllers)
    except ApiError as error:
        _run_errors(error)
    except (KeyError, TypeError, ValueError) as error:
        _fail(f"unexpected answer from {socket_path}: {type(error).__name__}: {error}")
    _echo(text)


@click.command(cls=_Command, epilog=_OBSERVE_HELP)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "dot", "mermaid", "json"]),
    default="text",
    show_default=True,
    help="text (each controller, the types it reads and writes), dot (Graphviz), mermaid or json.",
)
@_socket
def graph(output: str, socket_path: str) -> None:
    """Show which controller reads which resource types and writes which others."""
    from volumed.cli.api import ApiClient, ApiError
    from volumed.cli.api._observe_render import render_graph_text

    try:
        answer = ApiClient(socket_path).graph()
        if output in ("dot", "mermaid"):
            text = str(answer[output])
        elif output == "json":
            import json

            text = json.dumps({"controllers": answer["controllers"]}, indent=2)
        else:
            text = render_graph_text(answer["controllers"])
    except ApiError as error:
        _run_errors(error)
    except (KeyError, TypeError, ValueError) as error:
        _fail(f"unexpected answer from {socket_path}: {type(error).__name__}: {error}")
    _echo(text)

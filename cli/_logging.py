"""structlog set-up for long-running commands: one line per event on stderr."""

from __future__ import annotations

import logging
import os
import sys
from typing import Final

import structlog

LOG_LEVELS_ENV: Final = "VOLUMED_LOG_LEVELS"
"""``name=level,...``: the level of other libraries' loggers (e.g. ``grpc=info,celpy=debug``), which stay at
WARNING otherwise, ``-v`` or not."""


def parse_log_levels(text: str) -> tuple[dict[str, int], list[str]]:
    """``"grpc=info, celpy=debug"`` -> ``{"grpc": logging.INFO, "celpy": logging.DEBUG}``, and the items that
    are not ``NAME=LEVEL``."""
    levels: dict[str, int] = {}
    bad: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, level = item.partition("=")
        value = logging.getLevelNamesMapping().get(level.strip().upper())
        if not sep or not name.strip() or value is None:
            bad.append(item)
        else:
            levels[name.strip()] = value
    return levels, bad


def configure_logging(
    *, verbose: bool = False, json: bool = False, levels: dict[str, int] | None = None
) -> None:
    """Route structlog (and stdlib logging) to stderr: volumed's lines at INFO, or DEBUG with ``verbose``.

    Other libraries' stdlib loggers (cel-python, lark, gRPC, asyncio, urllib3...) stay at WARNING even with
    ``verbose``: their debug output (cel-python's evaluation dumps) buried volumed's own lines. Raise one with
    ``$VOLUMED_LOG_LEVELS`` (``name=level,...``) or ``levels`` (`volumed run --log-level`). Tracebacks are
    plain: rich's pretty tracebacks print local variables, which may hold secrets. A malformed item of the
    variable is named in a warning and ignored (the log set-up does not stop a boot).
    """
    level = logging.DEBUG if verbose else logging.INFO
    overrides, bad = parse_log_levels(os.environ.get(LOG_LEVELS_ENV, ""))
    overrides.update(levels or {})  # `--log-level NAME=LEVEL` wins over the variable
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("volumed").setLevel(level)  # volumed's own stdlib loggers (FUSE, LUKS2 volume)
    for name, value in overrides.items():
        logging.getLogger(name).setLevel(value)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    for item in bad:
        structlog.get_logger("volumed.logging").warning(
            f"${LOG_LEVELS_ENV}: ignoring an item that is not NAME=LEVEL", item=item
        )

"""structlog set-up for long-running commands: one line per event on stderr."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(*, verbose: bool = False, json: bool = False) -> None:
    """Route structlog (and stdlib logging) to stderr at INFO, or DEBUG with ``verbose``.

    Tracebacks are plain: rich's pretty tracebacks print local variables, which may hold secrets.
    """
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
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

"""`volumed config validate FILE`: check machine-config documents the way Talos would."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

EXIT_INVALID = 1


def _configure_logging(verbose: bool) -> None:
    """Log lines (e.g. ignored documents) go to stderr, debug ones only with --verbose."""
    import structlog

    if structlog.is_configured():
        return
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if verbose else logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


@click.group()
def config() -> None:
    """Machine config documents (Talos v1.12 VolumeConfig, UserVolumeConfig)."""


@config.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-v", "--verbose", is_flag=True, help="Also log the documents that are ignored.")
def validate(file: str, verbose: bool) -> None:
    """Validate FILE (multi-document YAML; - for stdin): one line per problem, exit 1 when invalid."""
    from volumed.config import check_config, read_config_file

    _configure_logging(verbose)
    try:
        data = read_config_file(sys.stdin.buffer if file == "-" else Path(file))
    except OSError as error:
        click.echo(f"Error: cannot read {file}: {error.strerror}", err=True)
        raise SystemExit(EXIT_INVALID) from None
    machine_config, issues = check_config(data)
    if machine_config is None:
        for issue in issues:
            click.echo(str(issue))
        count = len(issues)
        click.echo(f"{file}: invalid ({count} error{'s' if count != 1 else ''})", err=True)
        raise SystemExit(EXIT_INVALID)
    labels = machine_config.labels
    click.echo(f"valid: {', '.join(labels) if labels else 'no volume documents'}")
    if machine_config.ignored:
        plural = "s" if machine_config.ignored != 1 else ""
        click.echo(f"ignored: {machine_config.ignored} document{plural} of other kinds")

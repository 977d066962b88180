"""`volumed run`: the volume subsystem, as an OS image's init starts it."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import NoReturn

import click

from ._seconds import Seconds

ENV_TCTI = "VOLUMED_TPM_TCTI"
DEFAULT_STATE_DIR = "/run/volumed"
EXIT_CANNOT_RUN = 3
"""Exit code: this process cannot activate volumes here (not root, no usable backend); nothing was written."""
EXIT_BUSY = 5
"""Exit code: another process (another `volumed run`) owns the state directory or one of the disks."""
EXIT_VOLUME_FAILED = 6
"""Exit code of --once: a volume failed (what waits behind it is reported blocked)."""
EXIT_VOLUME_MISSING = 7
"""Exit code of --once: no volume failed, but one is missing (or what a waiting volume needs is)."""
_MAX_NODE_UUID = 256


def warn_if_config_missing(config: Path) -> None:
    """Say at start, naming it, that the config file is not there (nor staged for this start).

    Not an error: a config that appears later (written by `volumed apply-config`) is picked up, and until then
    STATE opens from META tag 9. But a mistyped path would otherwise only show as volumes that never come.
    """
    import structlog

    from volumed.controllers import staged_path

    if config.exists() or staged_path(config).exists():
        return
    structlog.get_logger("volumed.run").warning(
        "the config file does not exist (yet): until it appears, only STATE (from META tag 9) is set up",
        path=str(config),
    )


def check_log_levels(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, int]:
    """``--log-level NAME=LEVEL`` items as levels; a malformed one is a usage error naming it."""
    from ._logging import parse_log_levels

    levels, bad = parse_log_levels(",".join(value))
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not NAME=LEVEL (e.g. celpy=debug)")
    return levels


def check_tpm_tcti(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Refuse a malformed TCTI at start (a usage error naming the option or its variable): taken as it is,
    it would only show later, as every TPM key failing."""
    from volumed.keys import check_tcti

    try:
        return check_tcti(value)
    except ValueError as error:
        source = ctx.get_parameter_source(param.name or "")
        where = f" (from {ENV_TCTI})" if source is click.core.ParameterSource.ENVIRONMENT else ""
        raise click.BadParameter(f"{error}{where}", ctx=ctx, param=param) from None


def read_node_uuid_file(path: Path) -> str:
    """The node UUID in ``path``: one line (a trailing newline is dropped), no blanks, UTF-8.

    The error names the file, never its content (half of every nodeID passphrase).
    """
    try:
        data = _read_small_regular_file(path, 4 * _MAX_NODE_UUID + 3)  # UTF-8: up to 4 bytes a character
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint="'--node-uuid-file'"
        ) from None
    try:
        text = data.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        text = "\0"
    if not text or len(text) > _MAX_NODE_UUID or not text.isprintable() or any(c.isspace() for c in text):
        raise click.BadParameter(
            f"{path} does not hold a node UUID: one line without blanks (at most {_MAX_NODE_UUID} "
            "characters) is expected",
            param_hint="'--node-uuid-file'",
        )
    return text


def _read_small_regular_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` + 1 bytes of the regular file ``path`` (a symlink to one is fine).

    Anything else is refused before a read: /dev/zero never ends, a FIFO blocks until a writer comes.

    Raises:
        OSError: it cannot be opened, or is not a regular file (EINVAL, "not a regular file").
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


@click.command()
@click.option(
    "--config", "config", type=click.Path(dir_okay=False, path_type=Path), help="Machine config file."
)
@click.option(
    "--disk",
    "disks",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Use this disk image instead of the node's block devices (repeatable).",
)
@click.option(
    "--once",
    is_flag=True,
    help="Exit once nothing more can happen: every volume ready, failed, missing, or waiting behind a "
    "failed or missing one (exit 0 only when all are ready).",
)
@click.option("--backend", type=click.Choice(["auto", "dm", "fuse"]), default="auto", show_default=True)
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default="/",
    show_default=True,
    help="Mount targets are under this directory.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Runtime files: fuse views and the API socket.",
)
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help="API socket (default: STATE_DIR/api.sock).",
)
@click.option(
    "--node-uuid",
    default=None,
    help="Node UUID (overrides SMBIOS and META tag 0x0f). Visible to every user in the process list: "
    "prefer --node-uuid-file.",
)
@click.option(
    "--node-uuid-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the node UUID from this file (one line) instead of --node-uuid.",
)
@click.option(
    "--tpm-tcti",
    envvar=ENV_TCTI,
    default="device:/dev/tpmrm0",
    show_default=True,
    callback=check_tpm_tcti,
    help=f"TPM TCTI (env {ENV_TCTI}).",
)
@click.option(
    "--tpm-pcr-public-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="The UKI's PCR-signing public key (PEM) for TPM keys [default: /.extra/tpm2-pcr-public-key.pem].",
)
@click.option(
    "--tpm-pcr-signature",
    type=click.Path(dir_okay=False),
    default=None,
    help="The UKI's PCR 11 signatures (systemd's JSON) [default: /.extra/tpm2-pcr-signature.json].",
)
@click.option(
    "--tpm-boot-phases",
    type=click.Choice(["both", "enter", "leave", "off"]),
    default="both",
    show_default=True,
    help="PCR 11 phase words volumed extends, as Talos: enter-machined at start (only when the booted UKI "
    "signed that value), start-the-world once the volumes are open (or at the stop). 'enter'/'leave': only "
    "one of them (the image's init extends the other); 'off': PCR 11 is left alone.",
)
@click.option(
    "--kms-ca",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="CA certificate for a KMS server with a private CA.",
)
@click.option(
    "--retry-interval",
    type=Seconds(),
    default=30.0,
    show_default=True,
    help="Seconds before a retryable volume failure is retried (at least 0.1).",
)
@click.option(
    "--disk-poll-interval",
    type=Seconds(),
    default=5.0,
    show_default=True,
    help="Seconds between rescans of the disks (at least 0.1). The node's disks are also rescanned as soon "
    "as the kernel announces a block device added, changed or removed; --disk image files only by this poll.",
)
@click.option(
    "--timeout",
    type=Seconds(),
    default=600.0,
    show_default=True,
    help="With --once: give up after this many seconds (at least 0.1).",
)
@click.option(
    "--notify",
    is_flag=True,
    help="Tell the service manager (sd_notify, $NOTIFY_SOCKET) READY=1 once the volumes have settled (as "
    "--once would end, failed volumes included), STATUS= lines meanwhile, STOPPING=1 at the stop. Without "
    "$NOTIFY_SOCKET it does nothing.",
)
@click.option(
    "--controller",
    "controller",
    multiple=True,
    metavar="MODULE:ATTR",
    help="Load a plugin's controllers (repeatable): a Plugin, a controller class, or a callable taking the "
    "subsystem options. A plugin that fails to load is an error at start (exit 2).",
)
@click.option(
    "--entry-points/--no-entry-points",
    default=True,
    show_default=True,
    help="Load the plugins installed packages register in the 'volumed.controllers' entry-point group.",
)
@click.option(
    "--log-level",
    "log_levels",
    multiple=True,
    metavar="NAME=LEVEL",
    callback=check_log_levels,
    help="The level of a logger (repeatable), e.g. celpy=debug or grpc=info: other libraries' loggers stay "
    "at warning otherwise, -v or not (the same as $VOLUMED_LOG_LEVELS, which this overrides).",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def run(
    config: Path | None,
    disks: tuple[str, ...],
    once: bool,
    backend: str,
    root: Path,
    state_dir: Path,
    socket_path: Path | None,
    node_uuid: str | None,
    node_uuid_file: Path | None,
    tpm_tcti: str,
    tpm_pcr_public_key: str | None,
    tpm_pcr_signature: str | None,
    tpm_boot_phases: str,
    kms_ca: str | None,
    retry_interval: float,
    disk_poll_interval: float,
    timeout: float,
    notify: bool,
    controller: tuple[str, ...],
    entry_points: bool,
    log_levels: dict[str, int],
    verbose: bool,
) -> None:
    """Converge the node's volumes to the config and keep them there until stopped (SIGTERM, SIGINT).

    On exit (or with --once, when settled) every volume is unmounted and closed. Exit codes: 0 ok (with
    --once: every volume ready), 1 an error, or (--once) not settled within --timeout or no valid config,
    2 bad usage, 3 not root or no usable activation backend, 5 the state directory or a disk is owned by
    another volumed run, 6 (--once) a volume failed, 7 (--once) none failed but a volume is missing or
    waits for one that is missing or not configured.
    """
    import anyio

    from volumed.controllers import BootPhases, SubsystemOptions
    from volumed.node import NodeError, run_async
    from volumed.storage.activation import forbid_core_dumps

    from ._logging import configure_logging

    forbid_core_dumps()  # before any key is read: a core of this process would hold volume keys
    if node_uuid is not None and node_uuid_file is not None:
        raise click.UsageError("--node-uuid and --node-uuid-file exclude each other: give one")
    if node_uuid_file is not None:
        node_uuid = read_node_uuid_file(node_uuid_file)
    configure_logging(verbose=verbose, levels=log_levels)
    if config is not None:
        config = Path(os.path.abspath(config))
        warn_if_config_missing(config)
    options = SubsystemOptions(
        config=config,
        disks=disks,
        backend=backend,  # type: ignore[arg-type]
        root=root,
        state_dir=state_dir,
        node_uuid=node_uuid,
        tcti=tpm_tcti,
        tpm_pcr_public_key=tpm_pcr_public_key,
        tpm_pcr_signature=tpm_pcr_signature,
        tpm_boot_phases=BootPhases(tpm_boot_phases),
        kms_ca_file=kms_ca,
        retry_interval=retry_interval,
        discovery_interval=disk_poll_interval,
    )
    try:
        code = anyio.run(
            lambda: run_async(
                options,
                plugins=controller,
                entry_points=entry_points,
                socket=socket_path,
                once=once,
                settle_timeout=timeout,
                notify=notify,
                configure_logs=False,
            )
        )
    except NodeError as error:
        fail(str(error), error.exit_code)
    raise SystemExit(code)

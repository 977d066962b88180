"""`volumed kms serve|keygen|list-keys`: the network KMS that Talos nodes seal their disk keys with."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

EXIT_ERROR = 1


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(EXIT_ERROR)


def _read_file(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        _fail(f"cannot read {what} {path}: {exc.strerror}")


MAX_PORT = 65535


def _check_listen_address(listen: str) -> None:
    """Refuse a --listen that is not HOST:PORT with a port of 0..65535 (0: a free one).

    gRPC does not refuse them itself: it takes a missing port as 443 and wraps an out-of-range one onto
    another port, so the server would listen where nobody asked it to.
    """
    host, colon, port = listen.rpartition(":")
    if not colon or not host:
        _fail(f"--listen {listen!r}: expected HOST:PORT, e.g. 0.0.0.0:4050")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        _fail(f"--listen {listen!r}: an IPv6 address goes in brackets, e.g. [::1]:4050")
    if not (port.isascii() and port.isdigit()) or int(port) > MAX_PORT:
        _fail(f"--listen {listen!r}: the port must be a number from 0 to {MAX_PORT} (0 picks a free port)")


def _configure_json_logging() -> None:
    """One JSON object per line on stderr: the audit log a fleet ships to its log store."""
    import structlog

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),  # whatever sys.stderr is now
        cache_logger_on_first_use=False,
    )


@click.group()
def kms() -> None:
    """Network KMS speaking Talos' sidero.kms.KMSService (Seal/Unseal)."""
    from volumed.storage.activation import forbid_core_dumps

    # Every command holds master keys in memory (serve for its whole life): a core of it would hold them.
    forbid_core_dumps()


@kms.command()
@click.option("--listen", required=True, metavar="ADDR", help="host:port to listen on, e.g. 0.0.0.0:4050.")
@click.option(
    "--key-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="Master key file (create it with `volumed kms keygen`).",
)
@click.option(
    "--tls-cert", type=click.Path(dir_okay=False), help="Server certificate chain (PEM); enables TLS."
)
@click.option("--tls-key", type=click.Path(dir_okay=False), help="Private key of --tls-cert (PEM).")
@click.option(
    "--client-ca",
    type=click.Path(dir_okay=False),
    help="Require client certificates issued by this CA (PEM); needs --tls-cert.",
)
def serve(
    listen: str, key_file: str, tls_cert: str | None, tls_key: str | None, client_ca: str | None
) -> None:
    """Serve Seal/Unseal until SIGTERM or SIGINT; SIGHUP reloads the key file.

    Nodes point at it with `kms: {endpoint: grpc://HOST:PORT}` (plaintext) or `https://HOST:PORT` (TLS). The
    audit log (node UUID, operation, result; never key material) goes to stderr as JSON lines.
    """
    import anyio

    from volumed.keys.kms import KMSServerTLS, KMSTLSError, MasterKeyFileError, check_server_tls, serve_kms

    _check_listen_address(listen)
    if (tls_cert is None) != (tls_key is None):
        _fail("--tls-cert and --tls-key go together")
    if client_ca is not None and tls_cert is None:
        _fail("--client-ca needs --tls-cert and --tls-key (client certificates need TLS)")
    tls = None
    cert_pem = _read_file(tls_cert, "TLS certificate")
    key_pem = _read_file(tls_key, "TLS key")
    if cert_pem is not None and key_pem is not None:
        tls = KMSServerTLS(cert_pem, key_pem, _read_file(client_ca, "client CA"))
        try:
            check_server_tls(
                tls.cert_pem,
                tls.key_pem,
                tls.client_ca_pem,
                cert_name=f"TLS certificate {tls_cert}",
                key_name=f"TLS key {tls_key}",
                client_ca_name=f"client CA {client_ca}",
            )
        except KMSTLSError as exc:
            _fail(str(exc))
    _configure_json_logging()
    try:
        anyio.run(lambda: serve_kms(key_file, listen=listen, tls=tls), backend="asyncio")
    except (MasterKeyFileError, KMSTLSError, OSError) as exc:
        _fail(str(exc))


@kms.command()
@click.option("--key-file", required=True, type=click.Path(dir_okay=False), help="Master key file to write.")
@click.option("--rotate", is_flag=True, help="Add a new primary key to an existing file; old keys stay.")
@click.option("--id", "key_id", metavar="ID", help="Id of the new key (default: k<UTC time>-<random>).")
def keygen(key_file: str, rotate: bool, key_id: str | None) -> None:
    """Create a master key file (mode 0600), or with --rotate add a new primary key to it.

    After --rotate, send SIGHUP to the running server: new blobs use the new key, old blobs still unseal.
    """
    from volumed.keys.kms import (
        MasterKey,
        MasterKeyFileError,
        MasterKeyRing,
        load_master_key_file,
        save_master_key_file,
    )

    try:
        new_key = MasterKey.generate(key_id)
    except ValueError as exc:
        _fail(str(exc))
    try:
        if rotate:
            ring = load_master_key_file(key_file)
            try:
                ring = ring.rotated(new_key)
            except ValueError as exc:
                _fail(f"master key file {key_file}: {exc}")
            save_master_key_file(key_file, ring, exclusive=False)
        else:
            ring = MasterKeyRing((new_key,), new_key.key_id)
            save_master_key_file(key_file, ring, exclusive=True)
    except MasterKeyFileError as exc:
        _fail(str(exc))
    click.echo(f"{key_file}: primary key {new_key.key_id} ({len(ring.keys)} key(s))")


@kms.command("list-keys")
@click.option("--key-file", required=True, type=click.Path(dir_okay=False), help="Master key file to read.")
def list_keys(key_file: str) -> None:
    """List the ids of the master keys (never the keys), the primary marked with `*`."""
    from volumed.keys.kms import MasterKeyFileError, load_master_key_file

    try:
        ring = load_master_key_file(key_file)
    except MasterKeyFileError as exc:
        _fail(str(exc))
    for key in ring.keys:
        marker = "*" if key.key_id == ring.primary_id else " "
        click.echo(f"{marker} {key.key_id}\t{key.created}")

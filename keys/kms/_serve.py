"""Run a KMS server until SIGTERM/SIGINT, reloading the master key file on SIGHUP."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import anyio
import structlog

from ._master_keys import MasterKeyFileError, load_master_key_file
from ._server import AUDIT_LOGGER_NAME, KMSServer, KMSServerTLS

if TYPE_CHECKING:
    import os
    from collections.abc import Callable


async def serve_kms(
    key_file: str | os.PathLike[str],
    *,
    listen: str,
    tls: KMSServerTLS | None = None,
    on_ready: Callable[[KMSServer], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly (running calls get 5 s to finish).

    SIGHUP re-reads ``key_file`` (after ``volumed kms keygen --rotate``); an invalid file is logged and the
    keys in use are kept.

    Raises:
        MasterKeyFileError: the key file cannot be loaded at start (or others may read it).
        KMSTLSError: the TLS certificate, key or client CA is unusable, or the key is not the certificate's.
        OSError: the address cannot be bound.
    """
    log = structlog.get_logger(AUDIT_LOGGER_NAME)
    ring = await anyio.to_thread.run_sync(load_master_key_file, key_file)
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with KMSServer(ring, listen=listen, tls=tls, audit=log) as server:
            log.info(
                "kms.listening",
                address=server.address,
                tls=tls is not None,
                client_certificates=tls is not None and tls.client_ca_pem is not None,
                keys=len(ring.keys),
                primary=ring.primary_id,
            )
            if on_ready is not None:
                on_ready(server)
            async for signum in signals:
                if signum != signal.SIGHUP:
                    log.info("kms.stopping", signal=signal.Signals(signum).name)
                    break
                try:
                    new_ring = await anyio.to_thread.run_sync(load_master_key_file, key_file)
                except MasterKeyFileError as exc:
                    log.error("kms.keys_loaded", operation="reload", result="error", reason=str(exc))
                else:
                    server.service.reload(new_ring)
    log.info("kms.stopped")

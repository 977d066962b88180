"""KMS endpoint strings as Talos reads them: which address to dial and whether to use TLS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final
from urllib.parse import urlsplit

DEFAULT_PORT = 443
"""Port dialled when the endpoint names none (gRPC's default, as a Talos node does)."""


@final
@dataclass(frozen=True, slots=True)
class KMSEndpoint:
    """A parsed KMS endpoint.

    Attributes:
        target: ``host:port`` (IPv6 hosts in brackets) to dial.
        tls: whether the channel uses TLS.
    """

    target: str
    tls: bool

    @classmethod
    def parse(cls, endpoint: str) -> KMSEndpoint:
        """Apply Talos' rules: no scheme or ``grpc://`` is plaintext gRPC; any other scheme (``https://``) is
        TLS; a missing port is 443.

        Raises:
            ValueError: the endpoint is empty, has no host, a bad port, or a path, query or user part.
        """
        text = endpoint.strip()
        if not text:
            raise ValueError("KMS endpoint is empty")
        has_scheme = "://" in text
        parts = urlsplit(text if has_scheme else f"grpc://{text}")
        scheme = parts.scheme.lower()
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"KMS endpoint {endpoint!r}: only scheme://host[:port] is allowed")
        host = parts.hostname
        if not host:
            raise ValueError(f"KMS endpoint {endpoint!r} has no host")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"KMS endpoint {endpoint!r} has an invalid port") from None
        if port is None:
            port = DEFAULT_PORT
        if port == 0:
            raise ValueError(f"KMS endpoint {endpoint!r} has an invalid port")
        shown_host = f"[{host}]" if ":" in host else host
        return cls(target=f"{shown_host}:{port}", tls=scheme != "grpc")

    def __str__(self) -> str:
        return f"{'https' if self.tls else 'grpc'}://{self.target}"

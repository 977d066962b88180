"""Errors of the local API, by meaning: nothing listens, the server refused, the peer spoke nonsense."""

from __future__ import annotations

from typing import Final, Literal

ErrorCode = Literal[
    "bad_request", "unknown_type", "sensitive", "not_found", "forbidden", "busy", "unsupported", "internal"
]

ERROR_CODES: Final[frozenset[str]] = frozenset(
    ("bad_request", "unknown_type", "sensitive", "not_found", "forbidden", "busy", "unsupported", "internal")
)


class ApiError(Exception):
    """Base of every error the API client or server raises on purpose."""


class DaemonUnavailableError(ApiError):
    """No volumed answers on the socket (absent, stale, or refusing connections) — not a refused request."""


class ApiRequestError(ApiError):
    """The server answered with an error; ``code`` says which kind (see `ErrorCode`).

    Not raised for transport failures (`DaemonUnavailableError`, `ApiProtocolError`).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ApiProtocolError(ApiError):
    """The peer sent something that is not the API's wire format, or hung up in the middle of an answer."""


class SocketInUseError(ApiError):
    """`serve_api` refused to start: another server answers on the socket, or the path is not a socket."""


class WatchEndedError(ApiError):
    """A watch stopped before the client closed it: the daemon stopped, its state closed, or it dropped this
    client for reading too slowly."""

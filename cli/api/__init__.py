"""The read-only local API of a running volumed: a unix-socket server for `volumed run`, and its client.

`serve_api` serves `get` and `watch` of the registered, non-sensitive resource types to root; `ApiClient`
is what `volumed get` and `volumed watch` use. The wire format is newline-delimited JSON (see ``_wire``).

The server's names (`serve_api`, `resource_to_wire` and the server defaults) are imported on first use, so
that the client commands do not load the runtime and pydantic.
"""

from typing import TYPE_CHECKING

from ._client import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._client import ApiClient as ApiClient
from ._client import GetResult as GetResult
from ._client import Watch as Watch
from ._client import WatchEvent as WatchEvent
from ._constants import DEFAULT_SOCKET as DEFAULT_SOCKET
from ._constants import MAX_LINE as MAX_LINE
from ._constants import MAX_REQUEST as MAX_REQUEST
from ._constants import SOCKET_ENV as SOCKET_ENV
from ._errors import ApiError as ApiError
from ._errors import ApiProtocolError as ApiProtocolError
from ._errors import ApiRequestError as ApiRequestError
from ._errors import DaemonUnavailableError as DaemonUnavailableError
from ._errors import SocketInUseError as SocketInUseError
from ._errors import WatchEndedError as WatchEndedError
from ._render import OUTPUT_FORMATS as OUTPUT_FORMATS
from ._render import WatchPrinter as WatchPrinter
from ._render import render_json as render_json
from ._render import render_table as render_table
from ._render import render_yaml as render_yaml
from ._wire import TypeInfo as TypeInfo

if TYPE_CHECKING:
    from ._serialize import resource_to_wire as resource_to_wire
    from ._server import DEFAULT_MAX_CLIENTS as DEFAULT_MAX_CLIENTS
    from ._server import DEFAULT_SEND_TIMEOUT as DEFAULT_SEND_TIMEOUT
    from ._server import serve_api as serve_api

_LAZY = {
    "DEFAULT_MAX_CLIENTS": "_server",
    "DEFAULT_SEND_TIMEOUT": "_server",
    "serve_api": "_server",
    "resource_to_wire": "_serialize",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_SEND_TIMEOUT",
    "DEFAULT_SOCKET",
    "DEFAULT_TIMEOUT",
    "MAX_LINE",
    "MAX_REQUEST",
    "OUTPUT_FORMATS",
    "SOCKET_ENV",
    "ApiClient",
    "ApiError",
    "ApiProtocolError",
    "ApiRequestError",
    "DaemonUnavailableError",
    "GetResult",
    "SocketInUseError",
    "TypeInfo",
    "Watch",
    "WatchEndedError",
    "WatchEvent",
    "WatchPrinter",
    "render_json",
    "render_table",
    "render_yaml",
    "resource_to_wire",
    "serve_api",
]

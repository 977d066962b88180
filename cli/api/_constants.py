"""Where the API listens and the limits both ends agree on."""

from __future__ import annotations

from pathlib import Path
from typing import Final

DEFAULT_SOCKET: Final = Path("/run/volumed/api.sock")
"""The socket `volumed run` serves the read-only API on, unless told otherwise."""

SOCKET_ENV: Final = "VOLUMED_SOCKET"
"""Environment variable that overrides `DEFAULT_SOCKET` for `volumed get` and `volumed watch`."""

MAX_LINE: Final = 16 * 1024 * 1024
"""Longest JSON line either end accepts (one resource, or one listing), so a peer cannot exhaust memory."""

MAX_REQUEST: Final = 64 * 1024
"""Longest request line the server reads: requests are a few names."""

"""`volumed kms serve --listen`: addresses gRPC would bind somewhere else are refused before serving."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from volumed.cli import volumed

if TYPE_CHECKING:
    from pathlib import Path

PORT_RANGE = "the port must be a number from 0 to 65535 (0 picks a free port)"


@pytest.mark.parametrize(
    ("listen", "problem"),
    [
        ("127.0.0.1:99999", PORT_RANGE),
        ("127.0.0.1:65536", PORT_RANGE),
        ("127.0.0.1:-1", PORT_RANGE),
        ("127.0.0.1:", PORT_RANGE),
        ("127.0.0.1:http", PORT_RANGE),
        ("127.0.0.1", "expected HOST:PORT, e.g. 0.0.0.0:4050"),
        (":4050", "expected HOST:PORT, e.g. 0.0.0.0:4050"),
        ("::1:4050", "an IPv6 address goes in brackets, e.g. [::1]:4050"),
    ],
)
def test_serve_refuses_a_listen_address_without_a_valid_port(
    tmp_path: Path, listen: str, problem: str
) -> None:
    key_file = tmp_path / "keys.yaml"
    assert CliRunner().invoke(volumed, ["kms", "keygen", "--key-file", str(key_file)]).exit_code == 0
    result = CliRunner().invoke(volumed, ["kms", "serve", "--listen", listen, "--key-file", str(key_file)])
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: --listen {listen!r}: {problem}\n",
    )

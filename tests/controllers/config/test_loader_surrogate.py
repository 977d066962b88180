"""A static passphrase with a lone surrogate escape: refused by validation, never in the log or ConfigStatus.

Before, validation took it and ConfigLoader failed encoding it every second, logging the passphrase in
``repr(UnicodeEncodeError)``; no volume ever came up.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import structlog

from volumed.controllers import ConfigLoader
from volumed.resources import CONFIG, CONFIG_STATUS_ID, ConfigStatusDefinition
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource, run_runtime

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "S3cr3tXq"
STATUS = Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID)
CONFIG_TEXT = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
encryption:
  provider: luks2
  pbkdf: {type: argon2id, memory: 32, iterations: 4, parallel: 1}
  keys:
    - slot: 0
      static: {passphrase: "S3cr3tXq\\ud800"}
"""


async def test_a_surrogate_passphrase_is_an_invalid_config_and_never_logged(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT)
    output = io.StringIO()
    structlog.configure(
        processors=[structlog.dev.ConsoleRenderer(colors=False)],
        logger_factory=structlog.PrintLoggerFactory(output),
    )
    try:
        loader = ConfigLoader(config, poll_interval=0.01)
        async with run_runtime(loader) as runtime:
            status = await assert_resource(runtime.state, STATUS, lambda r: bool(r.spec.errors))  # type: ignore[attr-defined]
            errors = runtime.stats()["ConfigLoader"].errors
    finally:
        structlog.reset_defaults()
    assert not status.spec.valid
    assert status.spec.errors == (
        "document 1: invalid YAML: line 9, column 28: found an invalid Unicode character escape code"
        " (a surrogate)",
    )
    assert errors == 0
    assert SECRET not in repr(status)
    assert SECRET not in str(status.spec.model_dump())
    assert "machine config is invalid" in output.getvalue()
    assert SECRET not in output.getvalue()

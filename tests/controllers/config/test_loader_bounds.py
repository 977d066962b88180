"""ConfigLoader validates in a worker thread, within limits, and its ConfigStatus never shows config text.

Validation ran on the event loop: a config with nested CEL macros stalled the API and every controller.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

import anyio
import pytest

import volumed.controllers.config._loader as loader_module
from tests.cli.api._helpers import ask, running_api
from volumed.config import MAX_CONFIG_BYTES, ConfigIssue, MachineConfig, check_config
from volumed.controllers import ConfigLoader
from volumed.resources import BLOCK, CONFIG, CONFIG_STATUS_ID, ConfigStatusDefinition, VolumeConfigDefinition
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource, run_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime import Resource

STATUS = Pointer(CONFIG, ConfigStatusDefinition.type, CONFIG_STATUS_ID)
SECRET = "S3cr3tPassw0rd"
EPHEMERAL = """\
apiVersion: v1alpha1
kind: VolumeConfig
name: EPHEMERAL
encryption:
  provider: luks2
  keys:
    - slot: 0
      static:
        passphrase: PASSPHRASE
"""
# Valid, and slow to validate (thousands of YAML nodes, pure-Python PyYAML): about a second.
HEAVY = "version: v1alpha1\nmachine: {list: [" + "1, " * 8_000 + "]}\n---\n" + EPHEMERAL


def invalid(resource: Resource[object]) -> bool:
    return not resource.spec.valid and bool(resource.spec.errors)  # type: ignore[attr-defined]


async def test_validation_does_not_stop_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task on the loop runs while the config is validated (it did not run at all before the fix)."""
    ticks = 0
    during: list[int] = []

    def counting_check(data: str | bytes) -> tuple[MachineConfig | None, list[ConfigIssue]]:
        before = ticks
        result = check_config(data)
        during.append(ticks - before)
        return result

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.001)

    monkeypatch.setattr(loader_module, "check_config", counting_check)
    config = tmp_path / "config.yaml"
    config.write_text(HEAVY.replace("PASSPHRASE", "hunter2"))
    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
            # a generous bound on a busy machine, not a timing assertion
            await assert_resource(runtime.state, STATUS, lambda r: r.spec.valid, within=60)
        group.cancel_scope.cancel()
    assert during
    assert during[0] > 0


async def test_an_oversized_config_is_refused_naming_the_limit(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL.replace("PASSPHRASE", "hunter2"))
    async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
        volume = Pointer(BLOCK, VolumeConfigDefinition.type, "EPHEMERAL")
        await assert_resource(runtime.state, volume)
        config.write_text(EPHEMERAL.replace("PASSPHRASE", "hunter2") + "#" * (2 * MAX_CONFIG_BYTES) + "\n")
        status = await assert_resource(runtime.state, STATUS, invalid)
        assert status.spec.errors == (f"config: too large: more than {MAX_CONFIG_BYTES} bytes (the limit)",)
        await assert_resource(runtime.state, volume)  # the last valid config's volumes stay


@pytest.mark.parametrize("lead", ["*", "!", "&", "%", "@"])
async def test_config_status_served_by_the_api_does_not_show_the_passphrase(
    tmp_path: Path, lead: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL.replace("PASSPHRASE", lead + SECRET + "\n    - {slot: 99, nodeID: {}}"))
    sock = tmp_path / "api.sock"
    async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
        status = await assert_resource(runtime.state, STATUS, invalid)
        async with running_api(runtime.state, sock):
            messages, raw = await ask(sock, op="get", type="configstatus")
    assert SECRET[:6] not in "\n".join(status.spec.errors)
    assert SECRET[:6].encode() not in raw
    assert messages
    assert json.dumps(status.spec.errors[0])[1:-1].encode() in raw  # the API did serve the errors


async def test_an_invalid_config_is_checked_once_not_at_every_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unchanged invalid file was validated again at every poll (up to seconds of CPU, within limits)."""
    checks = 0
    reads = 0
    read = loader_module._read
    ten_polls = threading.Event()

    def counting_check(data: str | bytes) -> tuple[MachineConfig | None, list[ConfigIssue]]:
        nonlocal checks
        checks += 1
        return check_config(data)

    def counting_read(path: Path) -> bytes | None:
        nonlocal reads
        reads += 1
        if reads >= 10:
            ten_polls.set()
        return read(path)

    monkeypatch.setattr(loader_module, "check_config", counting_check)
    monkeypatch.setattr(loader_module, "_read", counting_read)
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL.replace("PASSPHRASE", "*" + SECRET))
    async with run_runtime(ConfigLoader(config, poll_interval=0.01)) as runtime:
        status = await assert_resource(runtime.state, STATUS, invalid)
        assert await anyio.to_thread.run_sync(ten_polls.wait, 30)  # ten polls of the same file
        assert checks == 1
        again = await assert_resource(runtime.state, STATUS, invalid)
        assert again.spec.errors == status.spec.errors
        config.write_text(EPHEMERAL.replace("PASSPHRASE", "hunter2"))
        await assert_resource(runtime.state, STATUS, lambda r: r.spec.valid)
    assert checks == 2

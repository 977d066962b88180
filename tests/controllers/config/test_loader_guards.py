"""ConfigLoader never acts on a config that is not whole (review of issue 14): an invalid staged file is not
promoted over the config (F2), a FIFO is refused without blocking (F5), a file still open for writing is not
read by the poll while inotify watches (F1)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import anyio

from tests.controllers.config._configs import EPHEMERAL, STATUS, USER, USER_VOLUME
from volumed.controllers import ConfigLoader, staged_path
from volumed.controllers.config import _loader as loader_module
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


async def test_an_empty_staged_file_is_not_promoted(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL + USER)
    staged_path(config).write_text("")  # a crash right after creating it
    async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
        await assert_resource(runtime.state, USER_VOLUME)
        status = await assert_resource(runtime.state, STATUS, lambda r: r.spec.valid)
        assert not status.spec.staged_promoted
    assert config.read_text() == EPHEMERAL + USER
    assert not staged_path(config).exists()
    assert (tmp_path / "config.yaml.staged.rejected").read_text() == ""


async def test_a_half_written_staged_file_is_not_promoted(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL + USER)
    half = (EPHEMERAL + USER).replace("minSize: 1GiB\n", "minSize: ")
    staged_path(config).write_text(half)
    async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
        await assert_resource(runtime.state, USER_VOLUME)
        await assert_resource(runtime.state, STATUS, lambda r: r.spec.valid and not r.spec.staged_promoted)
    assert config.read_text() == EPHEMERAL + USER
    assert (tmp_path / "config.yaml.staged.rejected").read_text() == half


async def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    os.mkfifo(config)  # no writer: an open() without O_NONBLOCK never returns
    with anyio.fail_after(20):
        async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
            status = await assert_resource(runtime.state, STATUS, lambda r: bool(r.spec.errors))
            assert "not a regular file" in status.spec.errors[0]
            await assert_no_resource(runtime.state, USER_VOLUME)


async def test_a_file_still_open_for_writing_is_not_applied_by_the_poll(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL + USER)
    async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
        await assert_resource(runtime.state, USER_VOLUME)
        with config.open("w") as writer:  # truncated, then half written: no IN_CLOSE_WRITE yet
            writer.write(EPHEMERAL)
            writer.flush()
            for _ in range(10):  # polls that see the half file (poll_interval 0.05 s)
                await anyio.sleep(0.05)
            await assert_resource(runtime.state, USER_VOLUME)
            status = await assert_resource(runtime.state, STATUS)
            assert status.spec.valid
            writer.write(USER)
        await assert_resource(runtime.state, USER_VOLUME)  # closed: read whole, the same config


async def test_a_symlinked_config_changed_elsewhere_is_applied_once_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inotify on the config's directory does not see its symlink's target change: the poll reads it once
    its stat stops changing (SETTLE_SECONDS, 0 here: the second poll that sees the same stat)."""
    monkeypatch.setattr(loader_module, "SETTLE_SECONDS", 0.0)
    (tmp_path / "etc").mkdir()
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "config.yaml"
    target.write_text(EPHEMERAL)
    config = tmp_path / "etc" / "config.yaml"
    config.symlink_to(target)
    async with run_runtime(ConfigLoader(config, poll_interval=0.05)) as runtime:
        await assert_resource(runtime.state, STATUS, lambda r: r.spec.valid)
        await assert_no_resource(runtime.state, USER_VOLUME)
        target.write_text(EPHEMERAL + USER)
        await assert_resource(runtime.state, USER_VOLUME)

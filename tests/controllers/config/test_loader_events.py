"""ConfigLoader wakes on inotify: a change of the config file is applied without waiting for the poll."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import anyio

from tests.controllers.config._configs import EPHEMERAL, STATUS, USER, USER_VOLUME
from volumed.controllers import ConfigLoader, staged_path
from volumed.runtime.testing import assert_no_resource, assert_resource, run_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from volumed.runtime.controller import ControllerContext

NEVER = 3600.0  # the poll interval of these tests: a change seen within seconds was not found by polling
SOON = 5.0


async def test_a_write_is_applied_without_waiting_for_the_poll(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL)
    async with run_runtime(ConfigLoader(config, poll_interval=NEVER)) as runtime:
        await assert_resource(runtime.state, STATUS, lambda r: r.spec.valid)
        await assert_no_resource(runtime.state, USER_VOLUME)
        config.write_text(EPHEMERAL + USER)  # truncate, write, close: applied once closed
        await assert_resource(runtime.state, USER_VOLUME, within=SOON)


async def test_a_config_renamed_into_place_is_applied(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL)
    async with run_runtime(ConfigLoader(config, poll_interval=NEVER)) as runtime:
        first = await assert_resource(runtime.state, STATUS, lambda r: r.spec.valid)
        new = tmp_path / ".config.yaml.tmp"
        new.write_text(EPHEMERAL + USER)  # a file of another name: not watched, nothing happens
        os.replace(new, config)  # the usual atomic write (editors, apply-config)
        await assert_resource(runtime.state, USER_VOLUME, within=SOON)
        status = await assert_resource(runtime.state, STATUS, lambda r: r.spec.digest != first.spec.digest)
        assert status.spec.valid


async def test_a_removed_config_is_reported_without_waiting_for_the_poll(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL)
    async with run_runtime(ConfigLoader(config, poll_interval=NEVER)) as runtime:
        await assert_resource(runtime.state, STATUS, lambda r: r.spec.present)
        config.unlink()
        await assert_resource(runtime.state, STATUS, lambda r: not r.spec.present, within=SOON)


class CountingLoader(ConfigLoader):
    """Counts reconciles, to see a wake-up that changes no resource (a staged file written)."""

    def __init__(self, config: Path) -> None:
        super().__init__(config, poll_interval=NEVER)
        self.runs = 0
        self.ran = anyio.Event()

    async def reconcile(self, ctx: ControllerContext) -> None:
        await super().reconcile(ctx)
        self.runs += 1
        self.ran.set()

    async def reconciled(self, runs: int) -> None:
        with anyio.fail_after(SOON):
            while self.runs < runs:
                self.ran = anyio.Event()
                await self.ran.wait()


async def test_a_staged_config_wakes_the_loader_and_other_files_do_not(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EPHEMERAL)
    loader = CountingLoader(config)
    async with run_runtime(loader):
        await loader.reconciled(1)
        await anyio.wait_all_tasks_blocked()
        before = loader.runs  # the start, and the wake-up of the source once it watches (maybe coalesced)
        (tmp_path / "unrelated").write_text("x")
        staged_path(config).write_text(EPHEMERAL + USER)
        await loader.reconciled(before + 1)
        await anyio.wait_all_tasks_blocked()
        assert loader.runs == before + 1  # one wake-up: the staged file's, not the unrelated file's


def test_the_inotify_source_works_on_trio_too(tmp_path: Path) -> None:
    # The runtime runs on trio as well (tested in tests/runtime); its fd wait is anyio's, so is this one.
    anyio.run(test_a_write_is_applied_without_waiting_for_the_poll, tmp_path, backend="trio")

"""MetaStore's lasting META problems are logged once, not at every retry: a tag 9 write refused over a
corrupt META was logged every poll (every 5 s in `volumed run`) for as long as META stayed corrupt; a META
with one bad copy was not logged at all (review21 F6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import structlog.testing

from tests.controllers.system.test_meta_store_watch import STATE_STATIC, OneMetaDisk, meta_of
from volumed.controllers import ConfigLoader, MetaStore
from volumed.resources import META_LOADED_ID, SYSTEM, MetaKeyDefinition, MetaLoadedDefinition, meta_key_id
from volumed.runtime import Pointer
from volumed.runtime.testing import assert_resource, run_runtime

if TYPE_CHECKING:
    from pathlib import Path

LOADED = Pointer(SYSTEM, MetaLoadedDefinition.type, META_LOADED_ID)
POLL = 0.05


async def test_a_refused_tag_9_write_is_logged_once_while_meta_stays_corrupt(tmp_path: Path) -> None:
    meta = meta_of(tmp_path / "node.img")
    with open(meta.path, "r+b") as image:  # noqa: ASYNC230 (before the runtime starts)
        image.seek(meta.offset)
        image.write(b"not META" * 4096)  # no valid copy and not blank: every write is refused
    config = tmp_path / "config.yaml"
    config.write_text(STATE_STATIC)
    store = MetaStore(poll_interval=POLL, watched_poll_interval=POLL)
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(OneMetaDisk(meta), ConfigLoader(config, poll_interval=POLL), store) as runtime:
            await assert_resource(runtime.state, LOADED, lambda r: "corrupt" in r.spec.error)
            await anyio.sleep(20 * POLL)  # the write is tried again every poll
    refused = [e for e in logs if e["event"] == "could not write STATE's encryption to META"]
    assert len(refused) == 1, refused


async def test_a_meta_with_one_bad_copy_is_logged_once_and_its_tags_published(tmp_path: Path) -> None:
    meta = meta_of(tmp_path / "node.img")
    meta.set(0x0C, b"kept")
    with open(meta.path, "r+b") as image:  # noqa: ASYNC230 (before the runtime starts)
        image.seek(meta.offset)
        image.write(b"\xde\xad\xbe\xef")  # copy 0's magic
    store = MetaStore(poll_interval=POLL, watched_poll_interval=POLL)
    with structlog.testing.capture_logs() as logs:
        async with run_runtime(OneMetaDisk(meta), store) as runtime:
            key = Pointer(SYSTEM, MetaKeyDefinition.type, meta_key_id(0x0C))
            await assert_resource(runtime.state, key, lambda r: r.spec.value.get_secret_value() == "kept")
            await anyio.sleep(10 * POLL)
            assert (await runtime.state.get(LOADED)).spec.error == ""  # its tags are known
    degraded = [e for e in logs if e["event"].startswith("META has one valid copy")]
    assert len(degraded) == 1, logs
    assert "copy 0: unexpected magic" in degraded[0]["error"]

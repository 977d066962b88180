"""serve_api: get and watch over the socket, refusals, sensitive types, slow watchers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from pydantic import SecretBytes, SecretStr
from structlog.testing import capture_logs

from volumed.cli.api import ApiClient, ApiRequestError, WatchEndedError
from volumed.resources import StaticKeySpec as StaticKey
from volumed.resources import (
    VolumeKeySecretsDefinition,
    VolumeKeySecretsSpec,
    VolumePhase,
)
from volumed.runtime import (
    InMemoryCore,
    ResourceDefinition,
    ResourceRegistry,
    SensitiveSpec,
    Spec,
    WrappedState,
    in_memory_state,
)

from ._helpers import SECRET, STATE_VOLUME, ask, connect, running_api, salt, volume_status

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "run" / "api.sock"


async def test_get_lists_resources_as_metadata_and_spec(sock: Path) -> None:
    state = in_memory_state()
    stored = await state.create(volume_status("STATE", **STATE_VOLUME), owner="VolumeFormatter")
    await state.create(volume_status("EPHEMERAL", phase="waiting"), owner="VolumeFormatter")
    async with running_api(state, sock):
        messages, _raw = await ask(sock, op="get", type="volumestatuses")
    [answer] = messages
    assert answer["type"] == {
        "type": "VolumeStatuses.block.volumed.dev",
        "namespace": "block",
        "aliases": ["vs", "volumestatus", "volumestatuses"],
        "print_columns": [
            {"name": "Phase", "path": "phase"},
            {"name": "Location", "path": "location"},
            {"name": "Mount", "path": "mount_location"},
            {"name": "Size", "path": "size"},
            {"name": "Filesystem", "path": "filesystem"},
            {"name": "Encryption", "path": "encryption_provider"},
            {"name": "Slot", "path": "encryption_slot"},
            {"name": "Error", "path": "error_message"},
        ],
    }
    assert [item["metadata"]["id"] for item in answer["items"]] == ["EPHEMERAL", "STATE"]
    state_item = answer["items"][1]
    assert state_item["metadata"] == {
        "namespace": "block",
        "type": "VolumeStatuses.block.volumed.dev",
        "id": "STATE",
        "version": 1,
        "owner": "VolumeFormatter",
        "phase": "running",
        "created": stored.metadata.created.isoformat(),
        "updated": stored.metadata.updated.isoformat(),
        "labels": {},
        "annotations": {},
        "finalizers": [],
    }
    assert datetime.fromisoformat(state_item["metadata"]["created"]) == stored.metadata.created
    assert state_item["spec"] == stored.spec.model_dump(mode="json")
    assert state_item["spec"]["phase"] == "ready"
    assert state_item["spec"]["configured_encryption_keys"] == ["nodeid", "static"]


@pytest.mark.parametrize(
    "name", ["VolumeStatuses.block.volumed.dev", "VolumeStatuses", "vs", "VS", "volumestatus"]
)
async def test_get_by_any_name_and_by_id(sock: Path, name: str) -> None:
    state = in_memory_state()
    await state.create(volume_status("STATE", **STATE_VOLUME))
    await state.create(volume_status("EPHEMERAL"))
    async with running_api(state, sock):
        result = await anyio.to_thread.run_sync(lambda: ApiClient(sock).get(name, "STATE"))
    assert result.type.type == "VolumeStatuses.block.volumed.dev"
    assert [item["metadata"]["id"] for item in result.items] == ["STATE"]
    assert result.items[0]["spec"]["location"] == "/dev/vda3"


async def test_get_other_namespace_and_empty_list(sock: Path) -> None:
    state = in_memory_state()
    await state.create(VolumeKeySecretsDefinition.new("x", VolumeKeySecretsSpec()), owner="a")
    await state.create(volume_status("u-data", phase="ready").with_metadata(namespace="other"))
    async with running_api(state, sock):
        client = ApiClient(sock)
        in_block = await anyio.to_thread.run_sync(lambda: client.get("vs"))
        in_other = await anyio.to_thread.run_sync(lambda: client.get("vs", namespace="other"))
    assert in_block.items == ()
    assert in_block.type.namespace == "block"
    assert [item["metadata"]["id"] for item in in_other.items] == ["u-data"]
    assert in_other.type.namespace == "other"


async def test_refusals(sock: Path) -> None:
    state = in_memory_state()
    async with running_api(state, sock):
        client = ApiClient(sock)

        def refused(*args: Any, **kwargs: Any) -> ApiRequestError:
            with pytest.raises(ApiRequestError) as caught:
                client.get(*args, **kwargs)
            return caught.value

        error = await anyio.to_thread.run_sync(refused, "vs", "STATE")
        assert (error.code, error.message) == (
            "not_found",
            "VolumeStatuses.block.volumed.dev 'STATE' not found in namespace block",
        )
        error = await anyio.to_thread.run_sync(refused, "volumes")
        assert error.code == "unknown_type"
        assert error.message.startswith(
            "unknown resource type 'volumes' (known types: ConfigStatuses.config.volumed.dev, "
            "DiscoveredVolumes.block.volumed.dev, Disks.block.volumed.dev, "
        )
        assert "VolumeStatuses.block.volumed.dev, " in error.message
        assert error.message.endswith(".dev)")
        assert "EncryptionSalts" not in error.message
        assert "VolumeKeySecrets" not in error.message
        error = await anyio.to_thread.run_sync(lambda: refused("vs", namespace=""))
        assert error.code == "bad_request"


@pytest.mark.parametrize(
    "request_line",
    [
        b"not json\n",
        b"[1, 2]\n",
        b'{"op": "delete", "type": "vs"}\n',
        b'{"op": "get"}\n',
        b'{"op": "get", "type": "vs", "id": 3}\n',
        b'{"op": "get", "type": "vs", "extra": true}\n',
        b'{"op": "get", "type": "vs", "id": ""}\n',
    ],
)
async def test_bad_requests_get_a_clear_error(sock: Path, request_line: bytes) -> None:
    async with running_api(in_memory_state(), sock), connect(sock) as connection:
        await connection.stream.send(request_line)
        answer = await connection.line()
    assert answer["error"]["code"] == "bad_request"
    assert answer["error"]["message"].startswith("bad request: ")


async def test_oversized_request_is_refused(sock: Path) -> None:
    async with running_api(in_memory_state(), sock), connect(sock) as connection:
        await connection.stream.send(b"x" * 70_000)
        answer = await connection.line()
    assert answer["error"] == {"code": "bad_request", "message": "bad request: longer than 65536 bytes"}


@pytest.mark.parametrize("name", ["EncryptionSalts", "encryptionsalt", "volumekeysecrets", "metakeys"])
@pytest.mark.parametrize("op", ["get", "watch"])
async def test_sensitive_types_are_refused_and_never_leak(sock: Path, name: str, op: str) -> None:
    state = in_memory_state()
    await state.create(salt())
    secrets = VolumeKeySecretsSpec(static_keys=(StaticKey(slot=0, passphrase=SECRET),))
    await state.create(VolumeKeySecretsDefinition.new("STATE", secrets))
    async with running_api(state, sock):
        messages, raw = await ask(sock, op=op, type=name)
        messages_by_id, raw_by_id = await ask(sock, op=op, type=name, id="encryption-salt")
    for answer in (messages, messages_by_id):
        [message] = answer
        assert message["error"]["code"] == "sensitive"
        assert message["error"]["message"].endswith(" is sensitive: not served by the API")
    for data in (raw, raw_by_id):
        assert SECRET not in data
        assert SECRET.hex().encode() not in data


class _Inner(Spec):
    """A non-sensitive spec that nests a sensitive model: refused like a sensitive one."""

    secrets: tuple[StaticKey, ...] = ()


_NESTING = ResourceDefinition(type="Leaky.test.volumed.dev", spec_model=_Inner, default_namespace="test")


async def test_a_spec_nesting_secrets_is_refused(sock: Path) -> None:
    state = in_memory_state()
    await state.create(_NESTING.new("x", _Inner(secrets=(StaticKey(slot=0, passphrase=SECRET),))))
    async with running_api(state, sock, types=ResourceRegistry([_NESTING])):
        messages, raw = await ask(sock, op="get", type="leaky")
    assert messages == [
        {
            "error": {
                "code": "sensitive",
                "message": "Leaky.test.volumed.dev is sensitive: not served by the API",
            }
        }
    ]
    assert SECRET not in raw


async def test_watch_bootstraps_then_streams_changes(sock: Path) -> None:
    state = in_memory_state()
    await state.create(volume_status("STATE", phase="waiting"), owner="f")
    await state.create(volume_status("EPHEMERAL", phase="waiting"), owner="f")
    async with running_api(state, sock), connect(sock) as connection:
        await connection.request(op="watch", type="vs")
        header = await connection.line()
        assert header["type"]["type"] == "VolumeStatuses.block.volumed.dev"
        seen = [await connection.line() for _ in range(3)]
        assert [(m["event"], m.get("resource", {}).get("metadata", {}).get("id")) for m in seen] == [
            ("created", "EPHEMERAL"),
            ("created", "STATE"),
            ("bootstrapped", None),
        ]
        current = await state.get(volume_status("STATE").pointer)
        await state.update(
            current.with_spec(current.spec.model_copy(update={"phase": VolumePhase.READY})), owner="f"
        )
        await state.create(volume_status("u-data"), owner="f")
        await state.destroy(volume_status("EPHEMERAL").pointer, owner="f")
        changes = [await connection.line() for _ in range(3)]
    assert [
        (m["event"], m["resource"]["metadata"]["id"], m["resource"]["metadata"]["version"]) for m in changes
    ] == [
        ("updated", "STATE", 2),
        ("created", "u-data", 1),
        ("destroyed", "EPHEMERAL", 1),
    ]
    assert changes[0]["resource"]["spec"]["phase"] == "ready"


async def test_watch_one_id(sock: Path) -> None:
    state = in_memory_state()
    await state.create(volume_status("EPHEMERAL"))
    async with running_api(state, sock):
        client = ApiClient(sock)
        with await anyio.to_thread.run_sync(lambda: client.watch("vs", "STATE")) as watch:
            events = iter(watch)
            first = await anyio.to_thread.run_sync(next, events)
            assert (first.type, first.resource) == ("bootstrapped", None)
            await state.create(volume_status("STATE", phase="located"))
            await state.create(volume_status("OTHER"))
            await state.destroy(volume_status("STATE").pointer)
            second = await anyio.to_thread.run_sync(next, events)
            third = await anyio.to_thread.run_sync(next, events)
    assert second.type == "created"
    assert second.resource is not None
    assert second.resource["spec"]["phase"] == "located"
    assert third.type == "destroyed"


async def test_watch_ends_with_an_error_when_the_state_closes(sock: Path) -> None:
    core = InMemoryCore()
    state = WrappedState(core)
    async with running_api(state, sock):
        client = ApiClient(sock)
        with await anyio.to_thread.run_sync(lambda: client.watch("disks")) as watch:
            events = iter(watch)
            assert (await anyio.to_thread.run_sync(next, events)).type == "bootstrapped"
            core.close()
            with pytest.raises(
                WatchEndedError, match=r"^volumed ended the watch: in-memory state was closed$"
            ):
                await anyio.to_thread.run_sync(next, events)


async def test_hung_up_watch_frees_its_slot(sock: Path) -> None:
    """With room for one client: a watch makes others busy; once it hangs up, the server serves again."""
    state = in_memory_state()
    async with running_api(state, sock, max_clients=1):
        async with connect(sock) as watcher:
            await watcher.request(op="watch", type="disks")
            assert "type" in await watcher.line()
            messages, _raw = await ask(sock, op="get", type="disks")
            assert messages == [
                {"error": {"code": "busy", "message": "busy: already serving 1 clients, try again"}}
            ]
        with anyio.fail_after(5):
            while True:
                messages, _raw = await ask(sock, op="get", type="disks")
                if "items" in messages[0]:
                    break
                await anyio.sleep(0.01)


async def test_slow_watcher_does_not_block_writers_and_is_dropped(sock: Path) -> None:
    """A watcher that never reads: writers go on at full speed, the server drops it after send_timeout."""
    state = in_memory_state()
    padding = "x" * 2000
    with capture_logs() as logs:
        async with running_api(state, sock, send_timeout=0.3), connect(sock) as stuck:
            await stuck.request(op="watch", type="vs")
            assert "type" in await stuck.line()
            with anyio.fail_after(20):
                for index in range(1500):
                    await state.create(volume_status(f"v{index:04}", error_message=padding))
                for index in range(1500):
                    current = await state.get(volume_status(f"v{index:04}").pointer)
                    await state.update(current.with_spec(current.spec.model_copy(update={"size": 1})))
            # Other clients are served meanwhile.
            messages, _raw = await ask(sock, op="get", type="vs", id="v0000")
            assert messages[0]["items"][0]["spec"]["size"] == 1
            # The stuck client is dropped: its connection ends (after what the socket buffers held).
            await anyio.sleep(1)
            data = await stuck.rest()
    received = data.count(b"\n")
    assert 0 < received < 3000
    assert {
        "event": "api watch client dropped: too slow",
        "send_timeout": 0.3,
        "log_level": "warning",
    } in logs


class _Token(SensitiveSpec):
    token: str


class _Wrapper(Spec):
    """A non-sensitive spec whose field's static type (Any) says nothing: the secret is in its value."""

    inner: Any


_WRAPPERS = ResourceDefinition(
    type="Wrappers.test.volumed.dev", spec_model=_Wrapper, default_namespace="test"
)
_LEAK = "LEAK-VIA-API"


@pytest.mark.parametrize(
    "inner",
    [
        _Token(token=_LEAK),
        {"deep": [("x", _Token(token=_LEAK))]},
        {"key": SecretStr(_LEAK)},
        [SecretBytes(_LEAK.encode())],
        _Wrapper(inner=(_Token(token=_LEAK),)),
    ],
    ids=["sensitive-spec", "in-dict-list-tuple", "secret-str", "secret-bytes", "in-a-model"],
)
@pytest.mark.parametrize("op", ["get", "watch"])
async def test_a_secret_in_a_non_sensitive_specs_value_is_never_served(
    sock: Path, inner: Any, op: str
) -> None:
    state = in_memory_state()
    await state.create(_WRAPPERS.new("a-clean-one", _Wrapper(inner="nothing secret")))
    await state.create(_WRAPPERS.new("x", _Wrapper(inner=inner)))
    async with running_api(state, sock, types=ResourceRegistry([_WRAPPERS])):
        messages, raw = await ask(sock, op=op, type="Wrappers.test.volumed.dev")
        _, raw_by_id = await ask(sock, op=op, type="Wrappers.test.volumed.dev", id="x")
    assert messages[-1] == {
        "error": {
            "code": "sensitive",
            "message": "Wrappers.test.volumed.dev is sensitive: not served by the API",
        }
    }
    for data in (raw, raw_by_id):
        assert _LEAK.encode() not in data
        assert b"sensitive" in data

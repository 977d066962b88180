"""`volumed kms keygen|list-keys|serve` as a user runs them: a real server process on a free loopback port."""

from __future__ import annotations

import base64
import json
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
import yaml
from anyio.streams.buffered import BufferedByteReceiveStream
from click.testing import CliRunner

from volumed.cli import volumed
from volumed.keys.kms import KMSKeyProvider, blob_key_id, load_master_key_file

from .conftest import NODE_UUID, KmsPKI

VOLUMED = str(Path(sys.executable).parent / "volumed")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(volumed, list(args), catch_exceptions=False)
    return result.exit_code, result.output


class ServerProcess:
    """A `volumed kms serve` child whose JSON log lines are read as they come."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stderr is not None
        self.process = process
        self._stderr = BufferedByteReceiveStream(process.stderr)
        self.lines: list[bytes] = []

    async def next_event(self, event: str) -> dict[str, Any]:
        with anyio.fail_after(10):
            while True:
                line = await self._stderr.receive_until(b"\n", 65536)
                self.lines.append(line)
                record = json.loads(line)
                if record["event"] == event:
                    return dict(record)

    async def read_rest(self) -> None:
        with anyio.fail_after(10):
            while True:
                try:
                    self.lines.append(await self._stderr.receive_until(b"\n", 65536))
                except (anyio.EndOfStream, anyio.IncompleteRead):
                    return


async def test_keygen_serve_rotate_reload_and_stop(tmp_path: Path) -> None:
    key_file = tmp_path / "master-keys.yaml"
    code, output = _run("kms", "keygen", "--key-file", str(key_file))
    assert code == 0, output
    first_id = load_master_key_file(key_file).primary_id
    assert output == f"{key_file}: primary key {first_id} (1 key(s))\n"
    assert key_file.stat().st_mode & 0o777 == 0o600

    command = [VOLUMED, "kms", "serve", "--listen", "127.0.0.1:0", "--key-file", str(key_file)]
    async with await anyio.open_process(command) as process:
        server = ServerProcess(process)
        listening = await server.next_event("kms.listening")
        assert listening["tls"] is False
        assert listening["primary"] == first_id
        endpoint = f"grpc://{listening['address']}"
        provider = KMSKeyProvider(slot=0, endpoint=endpoint, node_uuid=NODE_UUID)
        old = await provider.new_key()
        assert await provider.get_key(old.token) == old.passphrase

        code, output = _run("kms", "keygen", "--rotate", "--id", "second", "--key-file", str(key_file))
        assert (code, output) == (0, f"{key_file}: primary key second (2 key(s))\n")
        process.send_signal(signal.SIGHUP)
        reloaded = await server.next_event("kms.keys_loaded")
        assert (reloaded["primary"], reloaded["keys"], reloaded["result"]) == ("second", 2, "ok")
        new = await provider.new_key()
        assert new.token is not None
        assert blob_key_id(base64.b64decode(new.token["UserData"]["sealedData"])) == "second"
        assert await provider.get_key(old.token) == old.passphrase
        assert await provider.get_key(new.token) == new.passphrase

        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(10):
            assert await process.wait() == 0
        await server.read_rest()

    events = [json.loads(line)["event"] for line in server.lines]
    assert events[-2:] == ["kms.stopping", "kms.stopped"]
    audit = [
        json.loads(line) for line in server.lines if json.loads(line)["event"] in ("kms.seal", "kms.unseal")
    ]
    assert [(r["operation"], r["result"], r["node_uuid"]) for r in audit] == [
        ("seal", "ok", NODE_UUID),
        ("unseal", "ok", NODE_UUID),
        ("seal", "ok", NODE_UUID),
        ("unseal", "ok", NODE_UUID),
        ("unseal", "ok", NODE_UUID),
    ]
    log_text = b"".join(server.lines).decode()
    secrets = [k.key for k in load_master_key_file(key_file).keys]
    for secret in secrets:
        assert base64.b64encode(secret).decode() not in log_text
        assert secret.hex() not in log_text
    for key in (old, new):
        assert key.passphrase.reveal().decode() not in log_text
        assert key.token is not None
        assert key.token["UserData"]["sealedData"] not in log_text


async def test_serve_with_tls_and_client_certificates(tmp_path: Path, pki: KmsPKI) -> None:
    from volumed.keys.kms import KMSClientTLS

    key_file = tmp_path / "keys.yaml"
    assert _run("kms", "keygen", "--key-file", str(key_file))[0] == 0
    files = {}
    for name, content in [("cert", pki.server.cert), ("key", pki.server.key), ("ca", pki.ca.cert)]:
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(content)
    command = [
        VOLUMED, "kms", "serve", "--listen", "127.0.0.1:0", "--key-file", str(key_file),
        "--tls-cert", str(files["cert"]), "--tls-key", str(files["key"]), "--client-ca", str(files["ca"]),
    ]  # fmt: skip
    async with await anyio.open_process(command) as process:
        server = ServerProcess(process)
        listening = await server.next_event("kms.listening")
        assert (listening["tls"], listening["client_certificates"]) == (True, True)
        tls = KMSClientTLS(ca_pem=pki.ca.cert, cert_pem=pki.client.cert, key_pem=pki.client.key)
        provider = KMSKeyProvider(
            slot=0, endpoint=f"https://{listening['address']}", node_uuid=NODE_UUID, tls=tls
        )
        key = await provider.new_key()
        assert await provider.get_key(key.token) == key.passphrase
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(10):
            assert await process.wait() == 0


def test_list_keys_never_prints_keys(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.yaml"
    _run("kms", "keygen", "--key-file", str(key_file), "--id", "one")
    _run("kms", "keygen", "--key-file", str(key_file), "--rotate", "--id", "two")
    code, output = _run("kms", "list-keys", "--key-file", str(key_file))
    assert code == 0
    lines = output.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["  one", "* two"]
    for entry in yaml.safe_load(key_file.read_text())["keys"]:
        assert entry["key"] not in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keygen", "--key-file", "{dir}/k.yaml", "--id", "bad id"], "master key id 'bad id' must be"),
        (
            ["keygen", "--key-file", "{dir}/missing.yaml", "--rotate"],
            "missing.yaml: cannot read: No such file",
        ),
        (["list-keys", "--key-file", "{dir}/missing.yaml"], "missing.yaml: cannot read: No such file"),
        (
            ["serve", "--listen", "127.0.0.1:0", "--key-file", "{dir}/missing.yaml"],
            "cannot read: No such file",
        ),
        (["serve", "--listen", "127.0.0.1:0", "--key-file", "k", "--tls-cert", "c"], "go together"),
        (
            ["serve", "--listen", "127.0.0.1:0", "--key-file", "k", "--client-ca", "c"],
            "--client-ca needs --tls-cert",
        ),
        (
            [
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--key-file",
                "k",
                "--tls-cert",
                "{dir}/c",
                "--tls-key",
                "k",
            ],
            "cannot read TLS certificate",
        ),
    ],
)
def test_errors_exit_1_with_a_clear_message(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(volumed, ["kms", *(a.replace("{dir}", str(tmp_path)) for a in args)])
    assert result.exit_code == 1
    assert message in result.output


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.yaml"
    assert _run("kms", "keygen", "--key-file", str(key_file))[0] == 0
    before = key_file.read_bytes()
    code, output = _run("kms", "keygen", "--key-file", str(key_file))
    assert code == 1
    assert "already exists" in output
    assert key_file.read_bytes() == before


def test_serve_refuses_a_bad_listen_address(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.yaml"
    assert _run("kms", "keygen", "--key-file", str(key_file))[0] == 0
    result = CliRunner().invoke(
        volumed, ["kms", "serve", "--listen", "256.1.1.1:1", "--key-file", str(key_file)]
    )
    assert result.exit_code == 1
    assert "cannot listen on 256.1.1.1:1" in result.output

"""`volumed luks` through click's runner: exact output and cryptsetup's exit codes, grouped by command."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from tests.storage.luks2._luks2_helpers import MIB, OTHER, PASS, format_small, image, key_file
from volumed.cli import volumed
from volumed.storage.luks2 import Luks2Volume

if TYPE_CHECKING:
    from pathlib import Path

FAST = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]


def unlock_slot(path: Path, passphrase: bytes) -> int | None:
    with Luks2Volume.open(path) as vol:
        return vol.unlock(passphrase).keyslot


def run(*args: object, stdin: bytes | str | None = None) -> Result:
    return CliRunner().invoke(volumed, ["luks", *map(str, args)], input=stdin, catch_exceptions=False)


@pytest.fixture
def device(tmp_path: Path) -> Path:
    path = tmp_path / "d.img"
    format_small(path, label="STATE").close()
    return path


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    return key_file(tmp_path, PASS)


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in (
        "format",
        "dump",
        "test-key",
        "add-key",
        "change-key",
        "kill-slot",
        "volume-key",
        "token",
        "read",
        "write",
    ):
        assert f"  {name}" in result.stdout


class TestFormat:
    def test_batch_mode(self, tmp_path: Path, secret: Path) -> None:
        path = image(tmp_path / "new.img", 3 * MIB)
        result = run(
            "format",
            "--batch-mode",
            "--key-file",
            secret,
            "--luks2-keyslots-size",
            MIB,
            "--key-size",
            256,
            "--sector-size",
            512,
            "--label",
            "EPHEMERAL",
            *FAST,
            path,
        )
        assert (result.exit_code, result.stdout) == (0, "")
        with Luks2Volume.open(path) as vol:
            assert vol.label == "EPHEMERAL"
            assert vol.segment.sector_size == 512
            assert vol.unlock(PASS).bits == 256

    def test_terminal_confirmation(
        self, tmp_path: Path, secret: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from volumed.cli.luks import _common

        monkeypatch.setattr(_common, "stdin_is_terminal", lambda: True)
        path = image(tmp_path / "new.img", 3 * MIB)
        before = path.read_bytes()
        result = run("format", "--key-file", secret, "--luks2-keyslots-size", MIB, *FAST, path, stdin="no\n")
        assert result.exit_code == 1
        assert "This will overwrite data on" in result.stderr
        assert result.stderr.endswith("Operation aborted.\n")
        assert path.read_bytes() == before
        result = run("format", "--key-file", secret, "--luks2-keyslots-size", MIB, *FAST, path, stdin="YES\n")
        assert result.exit_code == 0
        assert unlock_slot(path, PASS) == 0

    def test_passphrase_from_stdin_line(self, tmp_path: Path) -> None:
        path = image(tmp_path / "new.img", 3 * MIB)
        result = run("format", "--batch-mode", "--luks2-keyslots-size", MIB, *FAST, path, stdin=b"typed\n")
        assert result.exit_code == 0
        assert unlock_slot(path, b"typed") == 0

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--cipher", "aes-cbc-essiv:sha256"], "unsupported cipher"),
            (["--label", "x" * 48], "label must be ASCII and at most 47"),
            (["--luks2-metadata-size", "12345"], "metadata size 12345"),
            (["--pbkdf", "scrypt"], "'scrypt' is not one of"),
        ],
    )
    def test_bad_arguments_exit_1(self, tmp_path: Path, secret: Path, args: list[str], message: str) -> None:
        path = image(tmp_path / "new.img", 3 * MIB)
        result = run("format", "--batch-mode", "--key-file", secret, *FAST, *args, path)
        assert result.exit_code == 1
        assert message in result.stderr
        assert path.read_bytes() == bytes(3 * MIB)

    def test_device_too_small_exit_4(self, tmp_path: Path, secret: Path) -> None:
        path = image(tmp_path / "new.img", MIB)
        result = run("format", "--batch-mode", "--key-file", secret, *FAST, path)
        assert result.exit_code == 4
        assert "too small" in result.stderr


class TestDeviceErrors:
    """ "does not exist or access denied" only for a device that is missing or unreadable."""

    def test_missing_device(self, tmp_path: Path) -> None:
        path = tmp_path / "nope.img"
        result = run("dump", path)
        assert (result.exit_code, result.stderr) == (
            4,
            f"Device {path} does not exist or access denied: {path}: no such file or device\n",
        )

    def test_an_existing_device_too_small_for_the_offset_says_so(self, tmp_path: Path, secret: Path) -> None:
        path = image(tmp_path / "small.img", 3 * MIB)
        result = run(
            "format", "--batch-mode", "--key-file", secret, *FAST, "--volume-offset", 30_000_000, path
        )
        assert result.exit_code == 4
        assert "does not exist" not in result.stderr
        assert result.stderr.startswith(f"{path}: the device")
        assert "too small" in result.stderr
        assert path.read_bytes() == bytes(3 * MIB)

    def test_a_missing_header_is_named(self, device: Path, tmp_path: Path) -> None:
        header = tmp_path / "hdr.img"
        result = run("dump", "--header", header, device)
        assert (result.exit_code, result.stderr) == (4, f"{header}: no such file or device\n")


class TestEmptyStdin:
    """Stdin with nothing on it is an error, as in cryptsetup, never an empty passphrase."""

    @pytest.mark.parametrize("key_args", [[], ["--key-file", "-"]])
    def test_format_refuses_and_writes_nothing(self, tmp_path: Path, key_args: list[str]) -> None:
        path = image(tmp_path / "new.img", 3 * MIB)
        args = ["format", "--batch-mode", *key_args, "--luks2-keyslots-size", MIB, *FAST, path]
        result = run(*args, stdin=b"")
        assert (result.exit_code, result.stderr) == (1, "Nothing to read on input.\n")
        assert path.read_bytes() == bytes(3 * MIB)

    def test_a_lone_newline_or_an_empty_key_file_is_the_empty_passphrase(self, tmp_path: Path) -> None:
        path = image(tmp_path / "new.img", 3 * MIB)
        result = run("format", "--batch-mode", "--luks2-keyslots-size", MIB, *FAST, path, stdin=b"\n")
        assert result.exit_code == 0
        assert unlock_slot(path, b"") == 0
        empty = key_file(tmp_path, b"")
        assert run("test-key", "--key-file", empty, path).stdout == "Key slot 0 unlocked.\n"

    @pytest.mark.parametrize(
        "args",
        [
            ["test-key"],
            ["volume-key"],
            ["read"],
            ["test-key", "--key-file", "-"],
            ["add-key", "--new-key-file", "NEW", *FAST],
            ["change-key", "--new-key-file", "NEW", *FAST],
            ["add-key", "--new-key-file", "-", "--key-file", "SECRET", *FAST],
        ],
    )
    def test_every_command_refuses(self, device: Path, secret: Path, tmp_path: Path, args: list[str]) -> None:
        new = key_file(tmp_path, OTHER)
        before = device.read_bytes()
        args = [str(new) if a == "NEW" else str(secret) if a == "SECRET" else a for a in args]
        result = run(*args, device, stdin=b"")
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", "Nothing to read on input.\n")
        assert device.read_bytes() == before


class TestDump:
    def test_json_exactly_as_on_disk(self, device: Path) -> None:
        result = run("dump", "--json", device)
        assert result.exit_code == 0
        on_disk = device.read_bytes()[4096:16384].rstrip(b"\0").decode()
        assert result.stdout == on_disk + "\n"

    def test_text(self, device: Path) -> None:
        with Luks2Volume.open(device, read_only=True) as vol:
            uuid = vol.uuid
        lines = run("dump", device).stdout.splitlines()
        assert lines[:9] == [
            "LUKS header information",
            "Version:       \t2",
            "Epoch:         \t3",
            "Metadata area: \t16384 [bytes]",
            "Keyslots area: \t1048576 [bytes]",
            f"UUID:          \t{uuid}",
            "Label:         \tSTATE",
            "Subsystem:     \t(no subsystem)",
            "Flags:       \t(no flags)",
        ]
        assert "  0: luks2" in lines
        assert "\tPBKDF:      pbkdf2" in lines

    def test_not_luks(self, tmp_path: Path) -> None:
        path = tmp_path / "zero.img"
        path.write_bytes(bytes(65536))
        result = run("dump", path)
        assert (result.exit_code, result.stderr) == (1, f"Device {path} is not a valid LUKS device.\n")


class TestTestKeyAndVolumeKey:
    def test_prints_the_slot(self, device: Path, secret: Path) -> None:
        result = run("test-key", "--key-file", secret, device)
        assert (result.exit_code, result.stdout) == (0, "Key slot 0 unlocked.\n")

    def test_wrong_passphrase_exit_2(self, device: Path, tmp_path: Path) -> None:
        result = run("test-key", "--key-file", key_file(tmp_path, OTHER), device)
        assert (result.exit_code, result.stderr) == (2, "No key available with this passphrase.\n")

    def test_volume_key_hex(self, device: Path, secret: Path) -> None:
        result = run("volume-key", "--key-file", secret, device)
        assert result.exit_code == 0
        with Luks2Volume.open(device) as vol:
            assert result.stdout == vol.unlock(PASS).hex() + "\n"


class TestAddAndKill:
    def test_add_then_kill(self, device: Path, secret: Path, tmp_path: Path) -> None:
        new = key_file(tmp_path, OTHER)
        result = run("add-key", "--new-key-file", new, "--key-file", secret, "--key-slot", 3, *FAST, device)
        assert (result.exit_code, result.stdout) == (0, "Key slot 3 created.\n")
        assert run("test-key", "--key-file", new, device).stdout == "Key slot 3 unlocked.\n"
        assert run("kill-slot", device, 3).exit_code == 0
        assert run("test-key", "--key-file", new, device).exit_code == 2

    def test_change_key(self, device: Path, secret: Path, tmp_path: Path) -> None:
        new = key_file(tmp_path, OTHER)
        result = run("change-key", "--new-key-file", new, "--key-file", secret, *FAST, device)
        assert (result.exit_code, result.stdout) == (0, "Key slot 0 changed.\n")
        assert run("test-key", "--key-file", new, device).stdout == "Key slot 0 unlocked.\n"
        assert run("test-key", "--key-file", secret, device).exit_code == 2
        assert run("change-key", "--new-key-file", new, "--key-file", secret, *FAST, device).exit_code == 2

    def test_kill_inactive_slot_exit_1(self, device: Path) -> None:
        result = run("kill-slot", device, 5)
        assert (result.exit_code, result.stderr) == (1, "key slot 5 is not active\n")

    def test_slot_out_of_range_exit_1(self, device: Path) -> None:
        assert run("kill-slot", device, 32).exit_code == 1


class TestConfig:
    def test_priority_and_label(self, device: Path, secret: Path, tmp_path: Path) -> None:
        run(
            "add-key",
            "--new-key-file",
            key_file(tmp_path, PASS, "same"),
            "--key-file",
            secret,
            "--key-slot",
            2,
            *FAST,
            device,
        )
        assert run("config", "--priority", "prefer", "--key-slot", 2, device).exit_code == 0
        assert run("test-key", "--key-file", secret, device).stdout == "Key slot 2 unlocked.\n"
        assert run("config", "--priority", "ignore", "--key-slot", 2, "--label", "NEW", device).exit_code == 0
        assert run("test-key", "--key-file", secret, device).stdout == "Key slot 0 unlocked.\n"
        with Luks2Volume.open(device) as vol:
            assert (vol.label, vol.keyslots[2].priority) == ("NEW", 0)

    def test_needs_something_to_do(self, device: Path) -> None:
        assert run("config", device).exit_code == 1
        result = run("config", "--priority", "prefer", device)
        assert (result.exit_code, result.stderr) == (1, "--priority needs --key-slot.\n")


class TestTokens:
    def test_import_export_remove(self, device: Path, tmp_path: Path) -> None:
        token = tmp_path / "t.json"
        token.write_text('{"type":"talos","keyslots":["0"],"k":"v"}')
        result = run("token", "import", "--token-id", 2, "--json-file", token, device)
        assert (result.exit_code, result.stdout) == (0, "Token 2 created.\n")
        exported = run("token", "export", "--token-id", 2, device)
        assert (exported.exit_code, exported.stdout) == (0, '{"type":"talos","keyslots":["0"],"k":"v"}')
        again = run("token", "import", "--token-id", 2, device, stdin='{"type":"x","keyslots":[]}')
        assert (again.exit_code, again.stderr) == (1, "token 2 already exists\n")
        replaced = run(
            "token", "import", "--token-id", 2, "--token-replace", device, stdin='{"type":"x","keyslots":[]}'
        )
        assert replaced.exit_code == 0
        assert run("token", "remove", "--token-id", 2, device).exit_code == 0
        assert json.loads(run("dump", "--json", device).stdout)["tokens"] == {}

    def test_bad_token_id(self, device: Path) -> None:
        result = run("token", "export", "--token-id", 32, device)
        assert (result.exit_code, result.stderr) == (1, "token id 32 is out of range 0..31\n")


class TestPayload:
    def test_write_then_read(self, device: Path, secret: Path) -> None:
        data = os.urandom(300_000)
        assert run("write", "--key-file", secret, "--data-offset", 4096, device, stdin=data).exit_code == 0
        out = run("read", "--key-file", secret, device).stdout_bytes
        assert len(out) == MIB
        assert out[4096 : 4096 + len(data)] == data

    def test_write_needs_a_key_file(self, device: Path) -> None:
        result = run("write", device, stdin=b"data")
        assert result.exit_code == 1
        assert "--key-file" in result.stderr

    def test_write_too_much(self, device: Path, secret: Path) -> None:
        result = run("write", "--key-file", secret, device, stdin=bytes(MIB + 1))
        assert result.exit_code == 1
        assert "larger than the payload" in result.stderr

    def test_write_too_much_from_a_pipe_says_what_was_written(self, device: Path, secret: Path) -> None:
        result = run("write", "--key-file", secret, "--data-offset", 4096, device, stdin=b"\xaa" * MIB)
        assert (result.exit_code, result.stderr) == (
            1,
            f"the input is larger than the payload ({MIB - 4096} bytes from --data-offset 4096); its first 0 "
            "bytes were written, the rest was not.\n",
        )

    def test_write_too_much_from_a_file_writes_nothing(
        self, device: Path, secret: Path, tmp_path: Path
    ) -> None:
        big = tmp_path / "big.bin"
        big.write_bytes(b"\xaa" * (MIB + 1))
        before = device.read_bytes()
        with big.open("rb") as stdin:
            result = run("write", "--key-file", secret, device, stdin=stdin)
        assert (result.exit_code, result.stderr) == (
            1,
            f"the input ({MIB + 1} bytes) is larger than the payload ({MIB} bytes); nothing was written.\n",
        )
        assert device.read_bytes() == before

    def test_write_a_file_that_fits(self, device: Path, secret: Path, tmp_path: Path) -> None:
        data = tmp_path / "data.bin"
        data.write_bytes(b"\xaa" * (MIB - 4096))
        with data.open("rb") as stdin:
            assert (
                run("write", "--key-file", secret, "--data-offset", 4096, device, stdin=stdin).exit_code == 0
            )
        assert run("read", "--key-file", secret, device).stdout_bytes[4096:] == data.read_bytes()


class TestBusy:
    def test_locked_header_exit_5(
        self, device: Path, secret: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import fcntl

        from volumed.storage.luks2 import _device

        monkeypatch.setattr(_device, "LOCK_TIMEOUT_S", 0.2)
        before = device.read_bytes()
        with open(device, "rb") as holder:
            fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
            result = run(
                "add-key", "--new-key-file", key_file(tmp_path, OTHER), "--key-file", secret, *FAST, device
            )
        assert result.exit_code == 5
        assert "locked by another process" in result.stderr
        assert device.read_bytes() == before

"""`volumed meta dump|get|set|delete|repair`: exact output and exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from volumed.cli import volumed
from volumed.storage.meta import BLOCK_LENGTH, PARTITION_SIZE, MetaPartition

if TYPE_CHECKING:
    from pathlib import Path

UUID = "12345678-1234-5678-1234-567812345678"
TAG9 = (
    b'{"EncryptionProvider":"luks2","EncryptionKeys":[{"KeySlot":0,"KeyStatic":{"KeyData":"secret"},"KeyNodeID":null,'
    b'"KeyKMS":null,"KeyTPM":null,"KeyLockToSTATE":null},{"KeySlot":1,"KeyStatic":null,"KeyNodeID":{},"KeyKMS":null,'
    b'"KeyTPM":null,"KeyLockToSTATE":null}],"EncryptionCipher":"","EncryptionKeySize":0,"EncryptionBlockSize":0,'
    b'"EncryptionPerfOptions":null,"EncryptionAllowDiscards":null}'
)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "meta.img"
    path.write_bytes(bytes(PARTITION_SIZE))
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(volumed, ["meta", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_set_get_delete(image: Path) -> None:
    assert run("set", str(image), "0x0f", UUID) == (0, "tag 0x0f set (36 bytes)\n", "")
    assert run("set", str(image), "15", UUID) == (0, "tag 0x0f unchanged (36 bytes)\n", "")
    assert run("get", str(image), "15") == (0, UUID, "")
    assert run("get", str(image), "UUID_OVERRIDE") == (0, UUID, "")
    assert run("delete", str(image), "0xf") == (0, "tag 0x0f deleted\n", "")
    assert run("delete", str(image), "0xf") == (0, "tag 0x0f was not set\n", "")
    assert run("get", str(image), "15") == (1, "", "Error: tag 0x0f is not set\n")


def test_get_prints_raw_bytes(image: Path) -> None:
    MetaPartition(image).set(12, b"\x00\xffbinary")
    result = CliRunner().invoke(volumed, ["meta", "get", str(image), "12"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout_bytes == b"\x00\xffbinary"


def test_value_file(image: Path, tmp_path: Path) -> None:
    value = tmp_path / "tag9.json"
    value.write_bytes(TAG9)
    assert run("set", str(image), "9", "--value-file", str(value)) == (
        0,
        f"tag 0x09 set ({len(TAG9)} bytes)\n",
        "",
    )
    assert MetaPartition(image).get(9) == TAG9


def test_dump(image: Path) -> None:
    meta = MetaPartition(image)
    meta.set(9, TAG9)
    meta.set(15, UUID.encode())
    meta.set(12, b"\x00\x01\x02")
    code, out, err = run("dump", str(image))
    assert (code, err) == (0, "")
    free = 262104 - (8 + len(TAG9)) - (8 + 36) - (8 + 3)
    assert out == (
        f"META {image} at offset 0: ok\n"
        "copy 0 at 0: valid\n"
        "copy 1 at 262144: valid\n"
        f"free: {free} bytes\n"
        "TAG   NAME                     SIZE  VALUE\n"
        f"0x09  STATE_ENCRYPTION_CONFIG   {len(TAG9)}  "
        "luks2 aes-xts-plain64; keys: slot 0 static, slot 1 nodeID\n"
        "0x0c  USER_RESERVED_1             3  000102\n"
        "0x0f  UUID_OVERRIDE              36  12345678-1234-5678-1234-567812345678\n"
    )
    assert "secret" not in out


def test_dump_blank_and_degraded(image: Path) -> None:
    assert run("dump", str(image)) == (
        0,
        f"META {image} at offset 0: blank\n"
        "copy 0 at 0: invalid: unexpected magic 0x00000000, expecting 0x5a4b3c2d\n"
        "copy 1 at 262144: invalid: unexpected magic 0x00000000, expecting 0x5a4b3c2d\n"
        "free: 262104 bytes\n"
        "no tags\n",
        "",
    )
    MetaPartition(image).set(15, UUID.encode())
    with image.open("r+b") as handle:
        handle.seek(BLOCK_LENGTH + 10)
        handle.write(b"x")
    before = image.read_bytes()
    code, out, _ = run("dump", str(image))
    assert code == 0
    assert out.splitlines()[:3] == [
        f"META {image} at offset 0: degraded",
        "copy 0 at 0: valid",
        "copy 1 at 262144: invalid: checksum mismatch",
    ]
    assert image.read_bytes() == before
    assert run("repair", str(image)) == (0, "repaired\n", "")
    assert run("repair", str(image)) == (0, "nothing to repair\n", "")


def test_offset_inside_a_disk_image(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(3 * PARTITION_SIZE))
    assert run("set", str(disk), "15", UUID, "--offset", "1MiB") == (0, "tag 0x0f set (36 bytes)\n", "")
    assert run("get", str(disk), "15", "--offset", "1048576") == (0, UUID, "")
    assert MetaPartition(disk, offset=PARTITION_SIZE).get(15) == UUID.encode()
    assert run("get", str(disk), "15") == (1, "", "Error: tag 0x0f is not set\n")


def test_value_too_large(image: Path, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 300000)
    before = image.read_bytes()
    assert run("set", str(image), "10", "--value-file", str(big)) == (
        1,
        "",
        "Error: value for tag 10 is 300000 bytes; META has room for 262096 "
        "(262104 bytes in total, 8 per entry header)\n",
    )
    assert image.read_bytes() == before


def test_not_a_meta_partition(image: Path) -> None:
    image.write_bytes(b"\x42" * PARTITION_SIZE)
    code, out, err = run("set", str(image), "9", "null")
    assert (code, out) == (4, "")
    assert err == (
        f"Error: no valid META copy at {image} offset 0 and the area is not blank: "
        "refusing to overwrite it (is this the META partition?)\n"
    )
    assert run("set", str(image), "9", "null", "--force") == (0, "tag 0x09 set (4 bytes)\n", "")


def test_device_too_small(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(bytes(1000))
    assert run("dump", str(small)) == (
        4,
        "",
        f"Error: {small} is too small for META at offset 0: needs 524288 bytes there, has 1000\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["get", "{image}", "0"], "Invalid value for 'TAG': invalid tag '0': must be between 1 and 255"),
        (
            ["get", "{image}", "0x100"],
            "Invalid value for 'TAG': invalid tag '0x100': must be between 1 and 255",
        ),
        (
            ["get", "{image}", "nine"],
            "Invalid value for 'TAG': invalid tag 'nine': expected a number (9 or 0x09) or a tag name",
        ),
        (["set", "{image}", "9"], "give exactly one of VALUE and --value-file"),
        (
            ["dump", "{image}", "--offset", "1XB"],
            "Invalid value for '--offset': invalid size '1XB': unknown unit 'xb'",
        ),
    ],
)
def test_usage_errors(image: Path, args: list[str], message: str) -> None:
    code, out, err = run(*[arg.format(image=image) for arg in args])
    assert (code, out) == (2, "")
    assert message in err


def test_set_refuses_a_value_that_is_not_text(image: Path) -> None:
    before = image.read_bytes()
    not_utf8 = b"\xff\xfe".decode("utf-8", "surrogateescape")  # how such argv bytes reach Python
    assert run("set", str(image), "12", not_utf8) == (
        1,
        "",
        "Error: VALUE is not valid UTF-8 text; give other bytes with --value-file FILE\n",
    )
    assert image.read_bytes() == before


@pytest.mark.parametrize("command", [["dump"], ["get", "5"], ["set", "5", "x"], ["delete", "5"], ["repair"]])
def test_a_device_that_cannot_be_opened_is_a_wrong_device(tmp_path: Path, command: list[str]) -> None:
    """Documented as exit 4 (wrong device); click refused the path first, as a usage error (exit 2)."""
    (tmp_path / "adir").mkdir()
    for device, why in (("missing.img", "No such file or directory"), ("adir", "Is a directory")):
        code, _out, err = run(command[0], str(tmp_path / device), *command[1:])
        assert code == 4, err
        assert why in err
    assert not (tmp_path / "missing.img").exists()


def test_get_on_corrupt_meta_says_the_tag_is_unknown(image: Path) -> None:
    """With both copies bad every tag read as "not set" (exit 1), as if META were empty."""
    MetaPartition(image).set(9, b"null")
    with image.open("r+b") as handle:
        for copy in (0, BLOCK_LENGTH):
            handle.seek(copy + 100)
            handle.write(b"x")
    code, _out, err = run("get", str(image), "9")
    assert (code, err.strip()) == (
        4,
        "Error: META is corrupt (no valid copy): tag 0x09 is unknown; see `volumed meta dump`",
    )
    blank = image.with_name("blank.img")
    blank.write_bytes(bytes(PARTITION_SIZE))
    assert run("get", str(blank), "9")[0] == 1  # blank META: really not set

"""The lockToSTATE salt file: created once (O_EXCL, 0600), reused, Talos' YAML, corrupt files refused."""

import os
import stat
from pathlib import Path

import pytest
import yaml

from volumed.keys import (
    SALT_FILE_NAME,
    DiskSalt,
    SaltFileError,
    decode_salt_file,
    encode_salt_file,
    load_or_create_salt,
    load_or_create_salt_sync,
    read_salt,
    read_salt_sync,
)


async def test_created_once_then_reused(tmp_path: Path) -> None:
    assert await read_salt(tmp_path) is None
    first = await load_or_create_salt(tmp_path)
    path = tmp_path / SALT_FILE_NAME
    content = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == [SALT_FILE_NAME]  # no temporary file left behind
    second = await load_or_create_salt(tmp_path)
    assert second == first
    assert path.read_bytes() == content  # never rewritten
    assert await read_salt(tmp_path) == first


def test_mode_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_salt_sync(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / SALT_FILE_NAME).stat().st_mode) == 0o600


def test_file_is_talos_yaml_list_of_ints(tmp_path: Path) -> None:
    salt = load_or_create_salt_sync(tmp_path)
    text = (tmp_path / SALT_FILE_NAME).read_text()
    assert text.startswith("diskSalt:\n    - ")
    assert yaml.safe_load(text) == {"diskSalt": list(salt.reveal())}


def test_existing_talos_file_is_used_as_is(tmp_path: Path) -> None:
    values = list(range(200, 232))
    flow_style = "diskSalt: [" + ", ".join(map(str, values)) + "]\n"  # any YAML spelling is accepted
    (tmp_path / SALT_FILE_NAME).write_text(flow_style)
    assert load_or_create_salt_sync(tmp_path) == DiskSalt(bytes(values))
    assert (tmp_path / SALT_FILE_NAME).read_text() == flow_style


def test_encode_decode_round_trip() -> None:
    salt = DiskSalt.generate()
    assert decode_salt_file(encode_salt_file(salt)) == salt
    assert decode_salt_file(b"diskSalt: !!binary " + __import__("base64").b64encode(salt.reveal())) == salt


def test_stale_temporary_file_from_a_crash_is_replaced(tmp_path: Path) -> None:
    (tmp_path / ".encryption-salt.yaml.tmp").write_text("diskSalt: [1, 2")
    salt = load_or_create_salt_sync(tmp_path)
    assert read_salt_sync(tmp_path) == salt
    assert sorted(os.listdir(tmp_path)) == [SALT_FILE_NAME]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"diskSalt: [1, 2", "not valid YAML at line 1"),
        (b"", "expected a mapping with a 'diskSalt' key"),
        (b"salt: [1]\n", "expected a mapping with a 'diskSalt' key"),
        (b"diskSalt: hello\n", "'diskSalt' must be a list of integers 0..255"),
        (b"diskSalt: [1, 256]\n", "'diskSalt' must be a list of integers 0..255"),
        (b"diskSalt: [true]\n", "'diskSalt' must be a list of integers 0..255"),
        (b"diskSalt: [1, 2, 3]\n", "'diskSalt' has 3 bytes, expected 32"),
    ],
)
def test_corrupt_file_is_refused_and_left_untouched(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / SALT_FILE_NAME
    path.write_bytes(content)
    with pytest.raises(SaltFileError) as info:
        load_or_create_salt_sync(tmp_path)
    assert str(info.value) == f"salt file {path}: {message}"
    assert path.read_bytes() == content


def test_symlink_and_directory_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.yaml"
    target.write_bytes(encode_salt_file(DiskSalt.generate()))
    (tmp_path / SALT_FILE_NAME).symlink_to(target)
    with pytest.raises(SaltFileError, match="cannot open"):
        read_salt_sync(tmp_path)
    other = tmp_path / "sub"
    other.mkdir()
    (other / SALT_FILE_NAME).mkdir()
    with pytest.raises(SaltFileError, match="not a regular file"):
        read_salt_sync(other)


def test_unwritable_root_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"
    with pytest.raises(SaltFileError, match=rf"salt file {missing}/{SALT_FILE_NAME}: cannot create: "):
        load_or_create_salt_sync(missing)

"""Hostile UKI files give a UKIFileError naming the file and the field, never another exception, never a
read that blocks (a FIFO) or grows without bound (a device, a huge file)."""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path  # noqa: TC003 - used at run time
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from volumed.keys.tpm import UKIFileError, parse_pcr_public_key, parse_pcr_signatures
from volumed.keys.tpm._uki import load_pcr_public_key, load_pcr_signatures

if TYPE_CHECKING:
    from collections.abc import Callable

WHERE = "/x/sig.json"
MAX_FILE_SIZE = 1 << 20
"""The read limit (volumed.keys.tpm._uki.MAX_FILE_SIZE)."""
ENTRY = {"pcrs": [11], "pkfp": "ab" * 32, "pol": "cd" * 32, "sig": base64.b64encode(bytes(256)).decode()}


def test_deep_nesting_is_a_file_error() -> None:
    from pathlib import Path

    data = b'{"sha256":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(UKIFileError, match=r"/x/sig\.json nests too deeply"):
        parse_pcr_signatures(data, path=Path(WHERE))


def test_a_signature_larger_than_a_tpm_takes_names_the_field() -> None:
    from pathlib import Path

    entry = dict(ENTRY, sig=base64.b64encode(b"\x01" * 4096).decode())
    data = json.dumps({"sha256": [entry]}).encode()
    with pytest.raises(UKIFileError, match=r"/x/sig\.json: sha256\[0\]: field 'sig' is 4096 bytes"):
        parse_pcr_signatures(data, path=Path(WHERE))
    largest = dict(ENTRY, sig=base64.b64encode(b"\x01" * 512).decode())  # a 4096-bit key's signature
    assert len(parse_pcr_signatures(json.dumps({"sha256": [largest]}).encode(), path=Path(WHERE))) == 1


def test_a_key_larger_than_a_tpm_takes_is_refused() -> None:
    from pathlib import Path

    public = rsa.RSAPublicNumbers(65537, (1 << 8191) | 1).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(UKIFileError, match=r"/x/pub\.pem is a 8192-bit RSA key: a TPM takes at most 4096"):
        parse_pcr_public_key(pem, path=Path("/x/pub.pem"))


def _in_thread(func: Callable[[], object]) -> BaseException | None:
    """Run ``func`` in a daemon thread; the join's bound only keeps a regression from hanging the suite."""
    caught: list[BaseException] = []

    def run() -> None:
        try:
            func()
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the read blocked"
    return caught[0] if caught else None


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "sig.json"
    os.mkfifo(fifo)
    try:
        error = _in_thread(lambda: load_pcr_signatures(fifo))
    finally:
        os.close(os.open(fifo, os.O_RDWR))  # a writer: lets a blocked reader end
    assert isinstance(error, UKIFileError)
    assert str(error) == f"PCR signature file {fifo} is not a regular file"


def test_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "pub.pem"
    link.symlink_to("/dev/null")  # /dev/zero would be read until memory runs out
    with pytest.raises(UKIFileError, match=r"pub\.pem is not a regular file"):
        load_pcr_public_key(link)


def test_a_file_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "sig.json"
    with big.open("wb") as out:
        out.truncate(MAX_FILE_SIZE + 1)
    with pytest.raises(
        UKIFileError, match=rf"sig\.json is {MAX_FILE_SIZE + 1} bytes, larger than such a file"
    ):
        load_pcr_signatures(big)
    big.write_bytes(json.dumps({"sha256": [ENTRY] * 3}).encode())  # a few KiB is fine
    assert len(load_pcr_signatures(big)) == 3

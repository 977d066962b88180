"""The fuse backend and an adiantum segment (Talos' cipher for machines without AES instructions): its FUSE
server only has AES-XTS, so activation must fail at once with the reason and the way out (``--backend dm``),
before any server, mount or loop device exists."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests._tools import require_root
from volumed.storage.activation import ActivationError, DataSegment, FuseActivator, mapping_name

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.system

NAME = mapping_name("ADIANTUM")


@pytest.mark.parametrize("cipher", ["xchacha12,aes-adiantum-plain64", "xchacha20,aes-adiantum-plain64"])
def test_fuse_refuses_adiantum_naming_the_cipher_and_dm(tmp_path: Path, cipher: str) -> None:
    require_root()
    image = tmp_path / "data.img"
    with image.open("wb") as handle:
        handle.truncate(4 << 20)
    runtime = tmp_path / "run"
    activator = FuseActivator(runtime_dir=runtime)
    segment = DataSegment(device=str(image), offset=0, size=None, sector_size=4096, cipher=cipher)
    with pytest.raises(ActivationError) as info:
        activator.activate(NAME, segment, bytes(32))
    message = str(info.value)
    assert cipher in message
    assert "the fuse backend has no userspace adiantum data path; use --backend dm" in message
    assert bytes(32).hex() not in message
    assert not activator.status(NAME).active
    assert not (runtime / NAME).exists()
    assert not (runtime / f"{NAME}.json").exists()

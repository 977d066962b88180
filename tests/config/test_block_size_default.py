"""Without ``blockSize`` the encryption sector size is 4096 on a 4 KiB-multiple data area, else 512, and the
docs say so (they said "the device's sector size")."""

from __future__ import annotations

from pathlib import Path

import pytest

from volumed.config import EncryptionSpec, load_config
from volumed.storage.luks2 import KdfSettings, Luks2Volume

MIB = 1024 * 1024
CONFIGURATION_DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
NO_BLOCK_SIZE = (
    "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nencryption:\n  keys: [{nodeID: {}}]\n"
)


@pytest.mark.parametrize(("image_size", "sector_size"), [(32 * MIB, 4096), (32 * MIB + 512, 512)])
def test_default_block_size_is_4096_when_the_data_area_is_aligned(
    tmp_path: Path, image_size: int, sector_size: int
) -> None:
    document = load_config(NO_BLOCK_SIZE).volume("EPHEMERAL")
    assert document is not None
    assert document.encryption.effective_block_size is None
    image = tmp_path / "disk.img"
    image.write_bytes(b"")
    with image.open("r+b") as file:
        file.truncate(image_size)
    kdf = KdfSettings(type="pbkdf2", iterations=1000)
    with Luks2Volume.format(
        image, b"passphrase", kdf=kdf, sector_size=document.encryption.effective_block_size
    ) as volume:
        assert volume.segment.sector_size == sector_size


def test_configuration_doc_gives_that_default() -> None:
    [row] = [
        line for line in CONFIGURATION_DOC.read_text().splitlines() if line.startswith("| `blockSize` |")
    ]
    default = row.split("|")[4]
    assert "4096" in default
    assert "512" in default
    assert "device's sector size" not in default


def test_effective_block_size_docstring_gives_that_default() -> None:
    doc = EncryptionSpec.effective_block_size.__doc__ or ""
    assert "4096" in doc
    assert "not the device's sector size" in doc

"""Random META areas: reads give tags or a state, never a crash, and never change the file."""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from volumed.storage.meta import (
    ADV_SIZE,
    BLOCK_LENGTH,
    MetaPartition,
    MetaState,
    encode_block,
)

TAGS = st.dictionaries(st.integers(1, 255), st.binary(max_size=200), max_size=10)
PATCHES = st.lists(st.tuples(st.integers(0, ADV_SIZE - 1), st.binary(min_size=1, max_size=64)), max_size=6)


def write_area(path: Path, area: bytes) -> None:
    path.write_bytes(area)


@given(TAGS, TAGS, PATCHES, st.booleans())
def test_random_areas_read_cleanly_without_writing(
    first: dict[int, bytes], second: dict[int, bytes], patches: list[tuple[int, bytes]], blank_second: bool
) -> None:
    area = bytearray(encode_block(first) + (bytes(BLOCK_LENGTH) if blank_second else encode_block(second)))
    for offset, data in patches:
        area[offset : offset + len(data)] = data
    area = area[:ADV_SIZE]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "meta.img"
        write_area(path, bytes(area))
        before = (hashlib.sha256(path.read_bytes()).digest(), os.stat(path).st_mtime_ns)
        meta = MetaPartition(path)
        contents = meta.read()
        meta.get(9)
        after = (hashlib.sha256(path.read_bytes()).digest(), os.stat(path).st_mtime_ns)
        assert before == after
        valid = [copy.valid for copy in contents.copies]
        if valid[0]:
            assert dict(contents.tags) == first
        elif valid[1]:
            assert dict(contents.tags) == second
        else:
            assert dict(contents.tags) == {}
            assert contents.state in (MetaState.BLANK, MetaState.CORRUPT)


@given(st.integers(0, 2**32), st.binary(max_size=64))
def test_fully_random_areas(seed: int, head: bytes) -> None:
    area = head + random.Random(seed).randbytes(ADV_SIZE - len(head))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "meta.img"
        write_area(path, area)
        contents = MetaPartition(path).read()
        assert contents.state in (MetaState.BLANK, MetaState.CORRUPT)
        assert path.read_bytes() == area


@given(st.lists(st.tuples(st.integers(1, 255), st.one_of(st.none(), st.binary(max_size=5000))), max_size=15))
def test_random_write_sequences_match_a_dict(operations: list[tuple[int, bytes | None]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "meta.img"
        path.write_bytes(bytes(ADV_SIZE))
        meta = MetaPartition(path)
        model: dict[int, bytes] = {}
        for tag, value in operations:
            if value is None:
                assert meta.delete(tag) == (tag in model)
                model.pop(tag, None)
            else:
                assert meta.set(tag, value) == (model.get(tag) != value)
                model[tag] = value
        contents = meta.read()
        assert dict(contents.tags) == model
        wrote = any(value is not None for _, value in operations)
        assert contents.state is (MetaState.OK if wrote else MetaState.BLANK)

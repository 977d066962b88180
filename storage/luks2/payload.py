"""The decrypted LUKS2 data segment as a seekable raw stream (for ``volumed luks read/write`` and FUSE).

Any position and length work: whole data units are decrypted or encrypted in batches of up to ``CHUNK``
bytes, and a write that covers part of a data unit reads, decrypts, patches and re-encrypts that unit. The
underlying file is used through ``seek``/``readinto``/``write`` only, under a lock, so one stream may serve
several threads through :meth:`PayloadStream.pread` and :meth:`PayloadStream.pwrite`.
"""

from __future__ import annotations

import errno
import io
import threading
from typing import BinaryIO, final

from .xts import SECTOR_SIZES, XtsCipher

__all__ = ["CHUNK", "PayloadStream"]

CHUNK = 1 << 20
"""Bytes en/decrypted per batch: large enough to amortise per-call costs, small enough for memory."""


def _round_down(value: int, unit: int) -> int:
    return value - value % unit


@final
class PayloadStream(io.RawIOBase):
    """Read and write the decrypted payload of a LUKS2 data segment.

    Args:
        file: the device, image or partition holding the segment, opened binary (``r+b`` to write). The stream
            does not close it.
        offset: byte offset of the segment in ``file``.
        size: segment size in bytes (resolve ``dynamic`` to the device end first); a multiple of sector_size.
        sector_size: the segment's data unit size (512..4096).
        iv_tweak: the segment's ``iv_tweak`` (IV of its first data unit, in 512-byte units).
        volume_key: the volume key; it never appears in repr or errors.
        cipher: the segment's encryption; only ``aes-xts-plain64``.

    Raises:
        ValueError: a parameter does not describe a usable segment (the message names it).
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        offset: int,
        size: int,
        sector_size: int,
        iv_tweak: int,
        volume_key: bytes,
        cipher: str = "aes-xts-plain64",
    ) -> None:
        super().__init__()
        if sector_size not in SECTOR_SIZES:
            raise ValueError(f"sector_size {sector_size} is not one of {', '.join(map(str, SECTOR_SIZES))}")
        if offset < 0:
            raise ValueError(f"segment offset {offset} is negative")
        if size < 0 or size % sector_size:
            raise ValueError(
                f"segment size {size} is not a non-negative multiple of sector_size {sector_size}"
            )
        if not 0 <= iv_tweak < 1 << 64:
            raise ValueError(f"iv_tweak {iv_tweak} is outside 0..2**64-1")
        self._cipher = XtsCipher(volume_key, cipher=cipher)
        self._cipher_name = cipher
        self._file = file
        self._offset = offset
        self._size = size
        self._sector_size = sector_size
        self._iv_tweak = iv_tweak
        self._position = 0
        self._io_lock = threading.Lock()
        self._write_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"PayloadStream(offset={self._offset}, size={self._size}, sector_size={self._sector_size}, "
            f"cipher={self._cipher_name!r}, position={self._position}{', closed' if self.closed else ''})"
        )

    @property
    def size(self) -> int:
        """Size of the decrypted payload in bytes."""
        return self._size

    @property
    def sector_size(self) -> int:
        """The data unit size."""
        return self._sector_size

    # io.RawIOBase

    def readable(self) -> bool:
        self._check_open()
        return True

    def writable(self) -> bool:
        self._check_open()
        return self._file.writable()

    def seekable(self) -> bool:
        self._check_open()
        return True

    def tell(self) -> int:
        self._check_open()
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence!r}")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._check_open()
        view = memoryview(buffer).cast("B")
        count = self._read_into(view, self._position)
        self._position += count
        return count

    def readall(self) -> bytes:
        self._check_open()
        data = self.pread(max(0, self._size - self._position), self._position)
        self._position += len(data)
        return data

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._check_open()
        count = self.pwrite(data, self._position)
        self._position += count
        return count

    def truncate(self, size: int | None = None) -> int:
        raise io.UnsupportedOperation("a LUKS2 data segment cannot be resized through its payload stream")

    def grow(self, size: int) -> None:
        """Serve ``size`` bytes from now on: the segment grew (a ``dynamic`` one whose device was enlarged).

        The caller checks that the file holds them. Shrinking is refused: data would vanish under a user.
        """
        if size < self._size or size % self._sector_size:
            raise ValueError(
                f"segment size {size} is not a multiple of sector_size {self._sector_size} "
                f"of at least {self._size} bytes"
            )
        with self._write_lock:
            self._size = size

    def flush(self) -> None:
        if not self.closed and not getattr(self._file, "closed", False):
            self._file.flush()

    def close(self) -> None:
        if not self.closed:
            try:
                self.flush()
            finally:
                super().close()

    # positional access, safe to share between threads

    def pread(self, length: int, position: int) -> bytes:
        """Return up to ``length`` decrypted bytes at ``position`` (fewer at the end); no seek."""
        self._check_open()
        if length < 0 or position < 0:
            raise ValueError(f"negative length {length} or position {position}")
        buffer = bytearray(max(0, min(length, self._size - position)))
        count = self._read_into(memoryview(buffer), position)
        return bytes(buffer[:count])

    def pwrite(self, data: bytes | bytearray | memoryview, position: int) -> int:
        """Encrypt and write ``data`` at ``position``; all of it, or nothing when it would pass the end."""
        self._check_open()
        view = memoryview(data).cast("B")
        if position < 0:
            raise ValueError(f"negative position {position}")
        if position + len(view) > self._size:
            raise OSError(
                errno.ENOSPC,
                f"write of {len(view)} bytes at {position} passes the end of the data segment "
                f"({self._size} bytes)",
            )
        with self._write_lock:
            done = 0
            while done < len(view):
                start = position + done
                first = _round_down(start, self._sector_size)
                stop = min(position + len(view), first + CHUNK)
                done += self._write_span(view[done : done + stop - start], start, first)
        return len(view)

    # internals

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed payload stream")

    def _iv(self, segment_position: int) -> int:
        return (self._iv_tweak + segment_position // 512) % (1 << 64)

    def _read_into(self, view: memoryview, position: int) -> int:
        count = max(0, min(len(view), self._size - position))
        done = 0
        while done < count:
            start = position + done
            first = _round_down(start, self._sector_size)
            last = min(self._round_up(position + count), first + CHUNK)
            raw = self._read_raw(first, last - first)
            self._cipher.decrypt_inplace(raw, iv_tweak=self._iv(first), sector_size=self._sector_size)
            take = min(last, position + count) - start
            view[done : done + take] = raw[start - first : start - first + take]
            done += take
        return count

    def _write_span(self, data: memoryview, start: int, first: int) -> int:
        stop = start + len(data)
        last = self._round_up(stop)
        buffer = bytearray(last - first)
        unit = self._sector_size
        if start != first:
            buffer[:unit] = self._read_plain_unit(first)
        if stop != last and (last - unit != first or start == first):
            buffer[-unit:] = self._read_plain_unit(last - unit)
        buffer[start - first : stop - first] = data
        self._cipher.encrypt_inplace(buffer, iv_tweak=self._iv(first), sector_size=unit)
        with self._io_lock:
            self._file.seek(self._offset + first)
            written = 0
            while written < len(buffer):
                count = self._file.write(memoryview(buffer)[written:])
                if not count:
                    raise OSError(errno.EIO, f"short write at device offset {self._offset + first + written}")
                written += count
        return len(data)

    def _read_plain_unit(self, segment_position: int) -> bytearray:
        raw = self._read_raw(segment_position, self._sector_size)
        self._cipher.decrypt_inplace(raw, iv_tweak=self._iv(segment_position), sector_size=self._sector_size)
        return raw

    def _read_raw(self, segment_position: int, length: int) -> bytearray:
        buffer = bytearray(length)
        view = memoryview(buffer)
        done = 0
        with self._io_lock:
            self._file.seek(self._offset + segment_position)
            while done < length:
                count = self._file.readinto(view[done:])  # type: ignore[attr-defined]
                if not count:
                    raise OSError(
                        errno.EIO,
                        f"the device ends inside the data segment: {length} bytes wanted at device offset "
                        f"{self._offset + segment_position}, {done} read",
                    )
                done += count
        return buffer

    def _round_up(self, value: int) -> int:
        return -(-value // self._sector_size) * self._sector_size

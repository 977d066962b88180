"""Errors raised by the filesystem and mount helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


class FilesystemError(Exception):
    """Base class of filesystem and mount errors."""


class ToolError(FilesystemError):
    """An external tool (mkfs, mount, umount, growfs) failed; carries its exit status and stderr."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        detail = f": {self.stderr}" if self.stderr else ""
        super().__init__(f"{self.argv[0]} failed with exit status {returncode}{detail}")


class ToolMissingError(FilesystemError):
    """An external tool is not installed; the message names it and the Debian package that has it."""


class MountConflictError(FilesystemError):
    """The target is already a mount point of a different source; nothing was mounted."""


class UnsupportedFilesystemError(FilesystemError, ValueError):
    """A filesystem type (or a label for it) that these helpers do not handle."""

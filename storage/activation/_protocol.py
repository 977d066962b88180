"""The one interface every activation backend implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._model import ActivationStatus, BackendName, DataSegment


class Activator(Protocol):
    """Turns an unlocked LUKS2 data segment into a decrypted block device, and back.

    Contract: every method blocks (subprocesses, mounts, ioctls), so async callers run them in a worker
    thread. ``activate`` is idempotent: activating a mapping that is already active for the same segment
    returns the existing device; a dead or half-made mapping of that name is cleaned up and made again.
    Concurrent calls for the same name must be serialised by the caller. The volume key is never logged nor
    put on a command line or in the environment.
    """

    @property
    def backend(self) -> BackendName:
        """The backend's name (``dm`` or ``fuse``)."""
        ...

    def activate(
        self, name: str, segment: DataSegment, volume_key: bytes, *, flags: Iterable[str] = ()
    ) -> str:
        """Make (or find) mapping ``name`` of ``segment`` and return its block device path.

        ``flags`` are dm-crypt optional flags (:data:`CRYPT_FLAGS`: ``allow_discards``, the perf options);
        an unknown one raises ActivationError. A backend that cannot honour some activates without them and
        lists them in ``status(name).ignored_flags``. A mapping that is already active keeps its flags.
        """
        ...

    def resize(self, name: str, segment: DataSegment, volume_key: bytes) -> int:
        """Grow active mapping ``name`` to ``segment``'s size now (a ``dynamic`` segment whose device grew).

        Returns the mapping's size in bytes. The same size is a no-op; a smaller one raises ActivationError
        (nothing changed), as does a mapping that is not active; one of another segment raises
        ActivationConflictError. ``volume_key`` is the segment's key (dm loads a new table with it).
        """
        ...

    def deactivate(self, name: str) -> None:
        """Remove mapping ``name``; absent is fine. Raises ActivationBusyError while it is in use."""
        ...

    def is_active(self, name: str) -> bool:
        """Whether mapping ``name`` exists and works."""
        ...

    def status(self, name: str) -> ActivationStatus:
        """What is known of mapping ``name`` (``active=False`` when there is none)."""
        ...

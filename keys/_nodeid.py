"""The nodeID key kind: the passphrase is the node UUID followed by the volume ID."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, final

import anyio.lowlevel

from ._errors import EntropyCheckError
from ._provider import KeyKind, NewKey
from ._secret import Passphrase

if TYPE_CHECKING:
    from collections.abc import Mapping


def check_uuid_entropy(node_uuid: str) -> None:
    """Refuse a node UUID that is empty or dominated by one character, with Talos' exact messages.

    A UUID such as ``00000000-0000-0000-0000-000000000000`` (unset SMBIOS) would give every such node the same
    key. The limit is Talos': any one character occurring more than ``len(uuid) // 2`` times, where the length
    is in UTF-8 bytes as Go's ``len`` counts it.

    Raises:
        EntropyCheckError: ``machine UUID is not populated`` or ``machine UUID <uuid> entropy check failed``.
            The second message shows the rejected UUID (as Talos does); a rejected UUID is never a key.
    """
    if not node_uuid:
        raise EntropyCheckError("machine UUID is not populated")
    limit = len(node_uuid.encode("utf-8")) // 2
    if max(Counter(node_uuid).values()) > limit:
        raise EntropyCheckError(f"machine UUID {node_uuid} entropy check failed")


def node_id_passphrase(node_uuid: str, volume_id: str) -> Passphrase:
    """Return ``node_uuid + volume_id`` as UTF-8 bytes after the entropy check (Talos' nodeID formula)."""
    check_uuid_entropy(node_uuid)
    return Passphrase((node_uuid + volume_id).encode("utf-8"))


@final
class NodeIDKeyProvider:
    """Derives the passphrase from the node's identity; no token.

    Threat model: the node UUID is readable by anyone who boots the machine (SMBIOS) and the volume ID is
    public, so a nodeID key only protects a disk that has been removed from its node.

    Args:
        slot: the LUKS2 key slot.
        node_uuid: the SMBIOS system UUID, or META tag 0x0f when that overrides it.
        volume_id: the volume ID (``STATE``, ``EPHEMERAL``, ``u-<name>``).
    """

    __slots__ = ("_node_uuid", "_slot", "_volume_id")

    def __init__(self, *, slot: int, node_uuid: str, volume_id: str) -> None:
        if not volume_id:
            raise ValueError(f"nodeID key for slot {slot}: the volume ID is empty")
        self._slot = slot
        self._node_uuid = node_uuid
        self._volume_id = volume_id

    @property
    def slot(self) -> int:
        return self._slot

    @property
    def kind(self) -> KeyKind:
        return "nodeID"

    async def new_key(self) -> NewKey:
        await anyio.lowlevel.checkpoint()
        return NewKey(node_id_passphrase(self._node_uuid, self._volume_id))

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        await anyio.lowlevel.checkpoint()
        return node_id_passphrase(self._node_uuid, self._volume_id)

    def __repr__(self) -> str:
        return f"NodeIDKeyProvider(slot={self._slot}, volume_id={self._volume_id!r})"

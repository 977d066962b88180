"""The kms key kind: a random disk key sealed by a network KMS, the sealed blob kept in a LUKS2 token."""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING, Any, final

from .._errors import KeyProviderError, KeyUnavailableError
from .._provider import KeyKind, NewKey
from .._secret import Passphrase
from .._tokens import make_kms_token, parse_kms_token
from ._client import CALL_TIMEOUT, KMSClient, KMSClientTLS
from ._endpoint import KMSEndpoint

if TYPE_CHECKING:
    from collections.abc import Mapping

KEY_SIZE = 32
"""Bytes of the random disk key a KMS seals (the reference server accepts exactly 32)."""


@final
class KMSKeyProvider:
    """Seals a fresh 32-byte key with the KMS at format/add time and unseals it at open.

    The passphrase is the standard base64 of the 32 bytes (44 ASCII bytes), as on a Talos node; the token is
    ``{"type":"sideroKMS","keyslots":[],"UserData":{"sealedData":"<base64 blob>"}}``. Each call opens its own
    channel, so the provider holds no connection between boots' worth of calls and is safe to cancel.

    Threat model: the disk opens only while the KMS agrees to unseal for this node UUID; a stolen disk without
    network access to the KMS stays locked. The KMS operator can read every key it seals.

    Args:
        slot: the LUKS2 key slot (its token lives at the same id).
        endpoint: the configured KMS endpoint.
        node_uuid: the node's UUID, sent with every call; the server binds the blob to it.
        tls: optional CA/client-certificate settings for a TLS endpoint.
        call_timeout: seconds per gRPC call (Talos: 10).
    """

    __slots__ = ("_call_timeout", "_endpoint", "_node_uuid", "_slot", "_tls")

    def __init__(
        self,
        *,
        slot: int,
        endpoint: str,
        node_uuid: str,
        tls: KMSClientTLS | None = None,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self._slot = slot
        self._endpoint = KMSEndpoint.parse(endpoint)
        self._node_uuid = node_uuid
        self._tls = tls
        self._call_timeout = call_timeout
        KMSClient(self._endpoint, tls=tls, call_timeout=call_timeout)  # validate the combination now

    @property
    def slot(self) -> int:
        return self._slot

    @property
    def kind(self) -> KeyKind:
        return "kms"

    @property
    def endpoint(self) -> KMSEndpoint:
        """The parsed endpoint."""
        return self._endpoint

    async def new_key(self) -> NewKey:
        self._require_node_uuid()
        key = secrets.token_bytes(KEY_SIZE)
        try:
            async with self._client() as client:
                sealed = await client.seal(self._node_uuid, key)
        except KeyProviderError as exc:
            raise self._in_context(exc) from None
        return NewKey(Passphrase(base64.b64encode(key)), make_kms_token(sealed))

    async def get_key(self, token: Mapping[str, Any] | None) -> Passphrase:
        sealed = parse_kms_token(token, slot=self._slot)
        self._require_node_uuid()
        try:
            async with self._client() as client:
                key = await client.unseal(self._node_uuid, sealed)
        except KeyProviderError as exc:
            raise self._in_context(exc) from None
        return Passphrase(base64.b64encode(key))

    def _client(self) -> KMSClient:
        return KMSClient(self._endpoint, tls=self._tls, call_timeout=self._call_timeout)

    def _require_node_uuid(self) -> None:
        if not self._node_uuid:
            raise KeyUnavailableError(f"kms key for slot {self._slot}: the node UUID is not known yet")

    def _in_context(self, exc: KeyProviderError) -> KeyProviderError:
        return type(exc)(f"kms key for slot {self._slot}: {exc}")

    def __repr__(self) -> str:
        return f"KMSKeyProvider(slot={self._slot}, endpoint={str(self._endpoint)!r})"

"""The KMS provider (against our real server) keeps the KeyProvider contract."""

from volumed.keys import DiskSalt, LockedToStateKeyProvider, with_time_limit
from volumed.keys.kms import KMSKeyProvider
from volumed.keys.testing import check_provider_conformance

from .conftest import NODE_UUID


async def test_kms_provider_conformance(endpoint: str) -> None:
    provider = KMSKeyProvider(slot=2, endpoint=endpoint, node_uuid=NODE_UUID)
    await check_provider_conformance(provider, sealed=True)
    await check_provider_conformance(with_time_limit(provider, 20), sealed=True)
    await check_provider_conformance(LockedToStateKeyProvider(provider, DiskSalt.generate()), sealed=True)

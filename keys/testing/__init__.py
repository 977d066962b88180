"""Test doubles and the conformance check for key providers (tests only; the fakes keep keys in clear)."""

from ._conformance import check_provider_conformance as check_provider_conformance
from ._fakes import FAKE_TOKEN_TYPE as FAKE_TOKEN_TYPE
from ._fakes import FakeKeyProvider as FakeKeyProvider
from ._fakes import FakeSealingKeyProvider as FakeSealingKeyProvider

__all__ = [
    "FAKE_TOKEN_TYPE",
    "FakeKeyProvider",
    "FakeSealingKeyProvider",
    "check_provider_conformance",
]

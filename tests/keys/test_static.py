import pytest

from volumed.keys import KeyProvider, NewKey, Passphrase, StaticKeyProvider


async def test_static_key_is_the_configured_bytes_without_token() -> None:
    provider: KeyProvider = StaticKeyProvider(slot=3, passphrase=b"topsecret")
    assert (provider.slot, provider.kind) == (3, "static")
    assert await provider.new_key() == NewKey(Passphrase(b"topsecret"), None)
    assert await provider.get_key(None) == Passphrase(b"topsecret")
    assert await provider.get_key({"type": "other"}) == Passphrase(b"topsecret")
    assert "topsecret" not in repr(provider)


def test_static_key_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="static key for slot 0: the passphrase is empty"):
        StaticKeyProvider(slot=0, passphrase=b"")


def test_new_key_repr_shows_neither_passphrase_nor_token_body() -> None:
    key = NewKey(Passphrase(b"pw"), {"type": "sideroKMS", "keyslots": [], "UserData": {"sealedData": "QUJD"}})
    assert repr(key) == "NewKey(passphrase=Passphrase(<redacted>), token=<sideroKMS token>)"
    assert repr(NewKey(Passphrase(b"pw"))) == "NewKey(passphrase=Passphrase(<redacted>), token=None)"

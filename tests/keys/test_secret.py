import pickle

import pytest

from volumed.keys import DiskSalt, Passphrase


def test_passphrase_never_shows_its_value() -> None:
    secret = Passphrase(b"hunter2-secret")
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret]), repr({"k": secret})):
        assert "hunter2" not in text
    assert repr(secret) == "Passphrase(<redacted>)"


def test_passphrase_reveal_and_constant_time_equality() -> None:
    assert Passphrase(b"abc").reveal() == b"abc"
    assert Passphrase(b"abc") == Passphrase(bytearray(b"abc"))
    assert Passphrase(b"abc") != Passphrase(b"abd")
    assert Passphrase(b"abc") != b"abc"
    assert len(Passphrase(b"abc")) == 3


def test_passphrase_is_immutable_unhashable_unpicklable() -> None:
    secret = Passphrase(b"abc")
    with pytest.raises(AttributeError):
        secret._value = b"x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(secret)
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(secret)


def test_passphrase_needs_bytes() -> None:
    with pytest.raises(TypeError, match="needs bytes, got str"):
        Passphrase("text")  # type: ignore[arg-type]


def test_disk_salt_is_redacted_and_sized() -> None:
    salt = DiskSalt(bytes(range(32)))
    assert repr(salt) == str(salt) == "DiskSalt(<redacted>)"
    assert salt.reveal() == bytes(range(32))
    assert salt == DiskSalt(bytes(range(32)))
    assert DiskSalt.generate() != DiskSalt.generate()
    with pytest.raises(ValueError, match="32 bytes, got 31"):
        DiskSalt(bytes(31))
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(salt)

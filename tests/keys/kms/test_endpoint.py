"""Endpoint rules as a Talos node reads them (notes/talos-behavior.md, "kms")."""

import pytest

from volumed.keys.kms import KMSEndpoint


@pytest.mark.parametrize(
    ("endpoint", "target", "tls"),
    [
        ("kms.example.com:4050", "kms.example.com:4050", False),  # no scheme -> grpc://, plaintext
        ("grpc://10.0.0.1:4050", "10.0.0.1:4050", False),
        ("GRPC://10.0.0.1:4050", "10.0.0.1:4050", False),
        ("https://kms.example.com", "kms.example.com:443", True),  # https without port -> :443
        ("https://kms.example.com:8443/", "kms.example.com:8443", True),
        ("tls://kms.example.com:8443", "kms.example.com:8443", True),  # any other scheme -> TLS
        ("[::1]:4050", "[::1]:4050", False),
        ("https://[fd00::1]", "[fd00::1]:443", True),
        ("  grpc://host:1  ", "host:1", False),
    ],
)
def test_talos_rules(endpoint: str, target: str, tls: bool) -> None:
    parsed = KMSEndpoint.parse(endpoint)
    assert (parsed.target, parsed.tls) == (target, tls)


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("", "KMS endpoint is empty"),
        ("https://", "KMS endpoint 'https://' has no host"),
        ("grpc://h:99999", "KMS endpoint 'grpc://h:99999' has an invalid port"),
        ("h:abc", "KMS endpoint 'h:abc' has an invalid port"),
        ("grpc://h:0", "KMS endpoint 'grpc://h:0' has an invalid port"),
        ("https://h/seal", "KMS endpoint 'https://h/seal': only scheme://host[:port] is allowed"),
        ("https://user:pw@h", "KMS endpoint 'https://user:pw@h': only scheme://host[:port] is allowed"),
    ],
)
def test_bad_endpoints(endpoint: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^KMS endpoint") as info:
        KMSEndpoint.parse(endpoint)
    assert str(info.value) == message


def test_str_shows_the_transport() -> None:
    assert str(KMSEndpoint.parse("h:1")) == "grpc://h:1"
    assert str(KMSEndpoint.parse("https://h")) == "https://h:443"

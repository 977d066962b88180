from volumed import keys


def test_hierarchy_by_meaning() -> None:
    assert issubclass(keys.KeyTimeoutError, keys.KeyUnavailableError)
    assert issubclass(keys.PolicyCheckError, keys.KeyRejectedError)
    for error in (
        keys.KeyUnavailableError,
        keys.KeyRejectedError,
        keys.EntropyCheckError,
        keys.InvalidTokenError,
        keys.SaltFileError,
    ):
        assert issubclass(error, keys.KeyProviderError)
    # not the builtin KeyError: `except KeyError` around dict lookups must not swallow provider failures
    assert not issubclass(keys.KeyProviderError, KeyError)

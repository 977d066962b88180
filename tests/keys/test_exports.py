"""Every public name is exported once, from the package, and listed in ``__all__``."""

import importlib

import pytest

PACKAGES = ["volumed.keys", "volumed.keys.kms", "volumed.keys.testing"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    public = {n for n in vars(module) if not n.startswith("_")}
    submodules = {n for n in public if getattr(vars(module)[n], "__spec__", None) is not None}
    assert sorted(module.__all__) == sorted(public - submodules)
    assert len(module.__all__) == len(set(module.__all__))


@pytest.mark.parametrize("name", PACKAGES)
def test_exported_objects_come_from_private_modules(name: str) -> None:
    module = importlib.import_module(name)
    for attribute in module.__all__:
        value = getattr(module, attribute)
        origin = getattr(value, "__module__", None)
        if origin is not None and origin.startswith(name + "."):
            assert origin.rsplit(".", 1)[1].startswith("_"), f"{attribute} lives in public module {origin}"


def test_provider_classes_are_final() -> None:
    from volumed import keys

    for cls in (
        keys.StaticKeyProvider,
        keys.NodeIDKeyProvider,
        keys.LockedToStateKeyProvider,
        keys.Passphrase,
    ):
        assert getattr(cls, "__final__", False), cls


def test_kms_classes_are_final() -> None:
    from volumed.keys import kms

    for cls in (kms.KMSKeyProvider, kms.KMSClient, kms.KMSServer, kms.KMSService, kms.MasterKeyRing):
        assert getattr(cls, "__final__", False), cls

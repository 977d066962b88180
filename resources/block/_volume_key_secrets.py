"""VolumeKeySecrets: the static passphrases of a volume's key slots, kept apart because they are secret."""

from __future__ import annotations

from pydantic import SecretBytes

from volumed.runtime import ResourceDefinition, SensitiveSpec

from .._namespaces import BLOCK, type_name


class StaticKeySpec(SensitiveSpec):
    """One static passphrase by slot.

    Attributes:
        slot: the key slot the passphrase opens.
        passphrase: the passphrase.
    """

    slot: int
    passphrase: SecretBytes


class VolumeKeySecretsSpec(SensitiveSpec):
    """Static passphrases configured for one volume (id = volume id).

    Attributes:
        static_keys: the static passphrases, by slot.
        meta_json: for STATE only, its encryption config as Talos stores it in META tag 9 (static
            passphrases included, hence here); None for other volumes.
    """

    static_keys: tuple[StaticKeySpec, ...] = ()
    meta_json: SecretBytes | None = None

    def passphrase(self, slot: int) -> bytes | None:
        """The static passphrase of ``slot``, None when the slot has none."""
        for key in self.static_keys:
            if key.slot == slot:
                return key.passphrase.get_secret_value()
        return None


VolumeKeySecretsDefinition: ResourceDefinition[VolumeKeySecretsSpec] = ResourceDefinition(
    type=type_name("VolumeKeySecrets", BLOCK),
    spec_model=VolumeKeySecretsSpec,
    default_namespace=BLOCK,
    aliases=("volumekeysecrets",),
)

"""EncryptionSalt: the lockToSTATE salt read from (or created on) the mounted STATE volume."""

from __future__ import annotations

from pydantic import SecretBytes

from volumed.runtime import ResourceDefinition, SensitiveSpec

from .._namespaces import BLOCK, type_name

ENCRYPTION_SALT_ID = "encryption-salt"


class EncryptionSaltSpec(SensitiveSpec):
    """The 32-byte salt that locked keys are mixed with (id = ``encryption-salt``), or why there is none.

    Attributes:
        disk_salt: the salt; None when there is none (``error`` then says why).
        error: set (and ``disk_salt`` is None) when the salt file on the mounted STATE is unusable: it names
            the file and the problem, and the key readiness reasons show it.
    """

    disk_salt: SecretBytes | None = None
    error: str = ""


EncryptionSaltDefinition: ResourceDefinition[EncryptionSaltSpec] = ResourceDefinition(
    type=type_name("EncryptionSalts", BLOCK),
    spec_model=EncryptionSaltSpec,
    default_namespace=BLOCK,
    aliases=("encryptionsalt", "encryptionsalts"),
)

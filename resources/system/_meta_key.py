"""MetaKey: one tag of the META partition, as text.

Sensitive: tag 9 holds STATE's encryption config, static passphrases included.
"""

from __future__ import annotations

from pydantic import SecretStr

from volumed.runtime import ResourceDefinition, SensitiveSpec

from .._namespaces import SYSTEM, type_name


def meta_key_id(tag: int) -> str:
    """Resource id of a META tag: ``0x09``."""
    return f"0x{tag:02x}"


class MetaKeySpec(SensitiveSpec):
    """The value of a META tag (id = ``0x<tag>``); held as a secret so no dump or log shows it.

    Attributes:
        value: the tag's value, as text.
    """

    value: SecretStr


MetaKeyDefinition: ResourceDefinition[MetaKeySpec] = ResourceDefinition(
    type=type_name("MetaKeys", SYSTEM),
    spec_model=MetaKeySpec,
    default_namespace=SYSTEM,
    aliases=("metakey", "metakeys"),
)

"""Talos v1.12's other volume documents: RawVolumeConfig, ExistingVolumeConfig, SwapVolumeConfig, ZswapConfig.

volumed loads and validates them as Talos does, and acts on each: raw, swap and existing volumes get a
VolumeConfig (see ``volumed.controllers.config``), ZswapConfig is applied by the Zswap controller.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from ._documents import MIN_USER_VOLUME_SIZE, ProvisioningSpec
from ._encryption import EncryptionSpec
from ._model import StrictModel

RAW_VOLUME_PREFIX: Final = "r-"
EXISTING_VOLUME_PREFIX: Final = "e-"
SWAP_VOLUME_PREFIX: Final = "s-"
#: Talos' ``ZswapConfig.MaxPoolPercent()`` when ``maxPoolPercent`` is not given.
DEFAULT_ZSWAP_MAX_POOL_PERCENT: Final = 20


class RawVolumeConfigDocument(StrictModel):
    """A ``RawVolumeConfig``: a partition ``r-<name>`` on a selected disk, without a filesystem (optionally
    encrypted), for workloads that take a block device."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["RawVolumeConfig"]
    name: str
    provisioning: ProvisioningSpec = Field(default_factory=ProvisioningSpec)
    encryption: EncryptionSpec = Field(default_factory=EncryptionSpec)

    @property
    def volume_id(self) -> str:
        """The volume's ID and partition label, ``r-<name>``."""
        return RAW_VOLUME_PREFIX + self.name

    @property
    def min_size_or_default(self) -> int:
        """The partition's minimum size in bytes: ``minSize``, else Talos' 100 MiB."""
        size = self.provisioning.min_size
        return size.value if size is not None and size.value else MIN_USER_VOLUME_SIZE


class VolumeSelectorSpec(StrictModel):
    """``discovery.volumeSelector``: a CEL expression over ``volume`` (and ``disk``)."""

    match: str = ""


class VolumeDiscoverySpec(StrictModel):
    """``discovery``: how an existing volume is found."""

    volume_selector: VolumeSelectorSpec | None = Field(default=None, alias="volumeSelector")

    @property
    def match(self) -> str:
        """The selector expression, empty when none is given."""
        return self.volume_selector.match if self.volume_selector is not None else ""


class MountSpec(StrictModel):
    """``mount`` of an ExistingVolumeConfig."""

    read_only: bool | None = Field(default=None, alias="readOnly")


class ExistingVolumeConfigDocument(StrictModel):
    """An ``ExistingVolumeConfig``: a volume already on some disk, found by a volume selector and mounted at
    ``/var/mnt/<name>``; never formatted."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["ExistingVolumeConfig"]
    name: str
    discovery: VolumeDiscoverySpec = Field(default_factory=VolumeDiscoverySpec)
    mount: MountSpec = Field(default_factory=MountSpec)

    @property
    def volume_id(self) -> str:
        """The volume's ID, ``e-<name>``."""
        return EXISTING_VOLUME_PREFIX + self.name

    @property
    def read_only(self) -> bool:
        """Whether it is mounted read-only (``mount.readOnly``, false by default)."""
        return bool(self.mount.read_only)


class SwapVolumeConfigDocument(StrictModel):
    """A ``SwapVolumeConfig``: a partition ``s-<name>`` on a selected disk used as swap (optionally
    encrypted)."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["SwapVolumeConfig"]
    name: str
    provisioning: ProvisioningSpec = Field(default_factory=ProvisioningSpec)
    encryption: EncryptionSpec = Field(default_factory=EncryptionSpec)

    @property
    def volume_id(self) -> str:
        """The volume's ID and partition label, ``s-<name>``."""
        return SWAP_VOLUME_PREFIX + self.name

    @property
    def min_size_or_default(self) -> int:
        """The partition's minimum size in bytes: ``minSize``, else Talos' 100 MiB."""
        size = self.provisioning.min_size
        return size.value if size is not None and size.value else MIN_USER_VOLUME_SIZE


class ZswapConfigDocument(StrictModel):
    """A ``ZswapConfig`` (no name: one per config): the kernel's compressed swap cache."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["ZswapConfig"]
    max_pool_percent: int | None = Field(default=None, alias="maxPoolPercent")
    shrinker_enabled: bool | None = Field(default=None, alias="shrinkerEnabled")

    @property
    def name(self) -> str:
        """Empty: Talos names the document ``ZswapConfig/`` (a second one is a duplicate)."""
        return ""

    @property
    def effective_max_pool_percent(self) -> int:
        """``maxPoolPercent``, 20 when not given (Talos' default)."""
        if self.max_pool_percent is None:
            return DEFAULT_ZSWAP_MAX_POOL_PERCENT
        return self.max_pool_percent

    @property
    def effective_shrinker_enabled(self) -> bool:
        """``shrinkerEnabled``, false when not given."""
        return bool(self.shrinker_enabled)


OtherDocument = (
    RawVolumeConfigDocument | ExistingVolumeConfigDocument | SwapVolumeConfigDocument | ZswapConfigDocument
)

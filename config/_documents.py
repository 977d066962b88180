"""VolumeConfig (STATE, EPHEMERAL, IMAGECACHE) and UserVolumeConfig (partition, directory or disk)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, PlainSerializer, PlainValidator

from ._cel import DiskSelector, compile_selector
from ._encryption import EncryptionSpec
from ._model import StrictModel
from ._size import ByteSize, PercentageSize, coerce_max_size, coerce_size

STATE: Final = "STATE"
EPHEMERAL: Final = "EPHEMERAL"
IMAGECACHE: Final = "IMAGECACHE"
#: The VolumeConfig names Talos v1.12 accepts (its ``allowedVolumes``).
SYSTEM_VOLUMES: Final = (STATE, EPHEMERAL, IMAGECACHE)
#: The system volumes volumed provisions; a VolumeConfig for another (IMAGECACHE) is loaded, not acted on.
MANAGED_SYSTEM_VOLUMES: Final = (STATE, EPHEMERAL)
USER_VOLUME_PREFIX: Final = "u-"
DEFAULT_FILESYSTEM: Final = "xfs"
FILESYSTEMS: Final = ("xfs", "ext4")
PARTITION: Final = "partition"
DIRECTORY: Final = "directory"
DISK: Final = "disk"
#: UserVolumeConfig ``volumeType`` values Talos v1.12 accepts, the first the default.
USER_VOLUME_TYPES: Final = (PARTITION, DIRECTORY, DISK)
#: Talos' ``MinUserVolumeSize``: a partition's minSize when none is given (user, raw and swap volumes).
MIN_USER_VOLUME_SIZE: Final = 100 * 1024 * 1024

Size = Annotated[ByteSize, PlainValidator(coerce_size), PlainSerializer(str, return_type=str)]
MaxSize = Annotated[
    ByteSize | PercentageSize, PlainValidator(coerce_max_size), PlainSerializer(str, return_type=str)
]


class DiskSelectorSpec(StrictModel):
    """``provisioning.diskSelector``: a CEL expression over ``disk`` and ``system_disk``."""

    match: str = ""


class ProvisioningSpec(StrictModel):
    """``provisioning``: on which disk a volume's partition is made and how large it is."""

    disk_selector: DiskSelectorSpec | None = Field(default=None, alias="diskSelector")
    grow: bool | None = None
    min_size: Size | None = Field(default=None, alias="minSize")
    max_size: MaxSize | None = Field(default=None, alias="maxSize")

    @property
    def match(self) -> str:
        """The selector expression, empty when none is given."""
        return self.disk_selector.match if self.disk_selector is not None else ""

    def selector(self) -> DiskSelector | None:
        """The compiled disk selector, None without one.

        Raises:
            SelectorError: the expression does not compile (never for a document that passed validation).
        """
        return compile_selector(self.match) if self.match else None

    @property
    def max_bytes(self) -> int:
        """``maxSize`` in bytes; 0 when unset or a percentage (Talos' ``MaxSize().ValueOrZero()``)."""
        return self.max_size.value if isinstance(self.max_size, ByteSize) else 0

    @property
    def max_is_relative(self) -> bool:
        """Whether ``maxSize`` is a percentage (then it is not compared with ``minSize``, as in Talos)."""
        return isinstance(self.max_size, PercentageSize)

    @property
    def max_percent(self) -> int:
        """``maxSize`` as a percentage; 0 when unset or in bytes (Talos' ``RelativeMaxSize``)."""
        return self.max_size.percent if isinstance(self.max_size, PercentageSize) else 0

    @property
    def is_empty(self) -> bool:
        """Whether nothing at all is configured (Talos' ``IsZero``)."""
        return not self.match and self.grow is None and self.min_size is None and self.max_size is None


class FilesystemSpec(StrictModel):
    """``filesystem``: how a user volume is formatted; ``projectQuotaSupport`` (xfs only) mounts it with
    ``prjquota``."""

    type: str = ""
    project_quota_support: bool | None = Field(default=None, alias="projectQuotaSupport")

    @property
    def is_empty(self) -> bool:
        """Whether nothing is configured (Talos' ``IsZero``)."""
        return not self.type and self.project_quota_support is None


class VolumeConfigDocument(StrictModel):
    """A ``VolumeConfig`` document: settings of the system volume STATE, EPHEMERAL or IMAGECACHE.

    System volumes are found by partition label and formatted as xfs; STATE takes no provisioning (its size
    is Talos' fixed 100 MiB), EPHEMERAL's ``provisioning`` overrides Talos' defaults (see the translation).
    IMAGECACHE is validated as Talos does but not provisioned by volumed (see :attr:`managed`).
    """

    api_version: str = Field(alias="apiVersion")
    kind: Literal["VolumeConfig"]
    name: str
    provisioning: ProvisioningSpec = Field(default_factory=ProvisioningSpec)
    encryption: EncryptionSpec = Field(default_factory=EncryptionSpec)

    @property
    def volume_id(self) -> str:
        """The volume's ID (``STATE``, ``EPHEMERAL``, ``IMAGECACHE``)."""
        return self.name

    @property
    def managed(self) -> bool:
        """Whether volumed provisions this volume (STATE and EPHEMERAL; not IMAGECACHE yet)."""
        return self.name in MANAGED_SYSTEM_VOLUMES

    @property
    def partition_label(self) -> str:
        """The GPT partition label the volume is located by."""
        return self.name

    @property
    def locator(self) -> str:
        """Talos' volume locator expression for this volume."""
        return f"volume.partition_label == '{self.partition_label}'"

    @property
    def filesystem_type(self) -> str:
        """System volumes are always xfs."""
        return DEFAULT_FILESYSTEM

    @property
    def effective_encryption(self) -> EncryptionSpec | None:
        """The encryption block when it asks for encryption, else None."""
        return self.encryption if self.encryption.enabled else None


class UserVolumeConfigDocument(StrictModel):
    """A ``UserVolumeConfig`` document, mounted at ``/var/mnt/<name>``: by ``volumeType`` a partition made on
    a selected disk (the default, label ``u-<name>``), a directory on EPHEMERAL, or a whole selected disk.

    volumed acts on all three (see :attr:`managed`).
    """

    api_version: str = Field(alias="apiVersion")
    kind: Literal["UserVolumeConfig"]
    name: str
    volume_type: str | None = Field(default=None, alias="volumeType")
    provisioning: ProvisioningSpec = Field(default_factory=ProvisioningSpec)
    filesystem: FilesystemSpec = Field(default_factory=FilesystemSpec)
    encryption: EncryptionSpec = Field(default_factory=EncryptionSpec)

    @property
    def volume_id(self) -> str:
        """The volume's ID, ``u-<name>``."""
        return USER_VOLUME_PREFIX + self.name

    @property
    def effective_volume_type(self) -> str:
        """``volumeType``, ``partition`` when not given."""
        return self.volume_type if self.volume_type is not None else PARTITION

    @property
    def managed(self) -> bool:
        """Whether volumed acts on this volume: partition, directory and disk volumes."""
        return self.effective_volume_type in (PARTITION, DIRECTORY, DISK)

    @property
    def min_size_or_default(self) -> int:
        """The partition's minimum size in bytes: ``minSize``, else Talos' 100 MiB."""
        size = self.provisioning.min_size
        return size.value if size is not None and size.value else MIN_USER_VOLUME_SIZE

    @property
    def partition_label(self) -> str:
        """The GPT partition label of the volume's partition, ``u-<name>``."""
        return USER_VOLUME_PREFIX + self.name

    @property
    def locator(self) -> str:
        """Talos' volume locator expression for this volume."""
        return f"volume.partition_label == '{self.partition_label}'"

    @property
    def filesystem_type(self) -> str:
        """The filesystem, xfs by default."""
        return self.filesystem.type or DEFAULT_FILESYSTEM

    @property
    def effective_encryption(self) -> EncryptionSpec | None:
        """The encryption block when it asks for encryption, else None."""
        return self.encryption if self.encryption.enabled else None


VolumeDocument = VolumeConfigDocument | UserVolumeConfigDocument

"""Volume selectors: CEL expressions over ``volume`` (and its ``disk``), as an ExistingVolumeConfig's
``volumeDiscovery.volumeSelector.match``.

Talos evaluates them in its ``VolumeLocator`` environment: ``volume`` is the discovered volume
(block.DiscoveredVolumeSpec, protobuf field names) and ``disk`` the disk it is on (block.DiskSpec). They are
compiled, bounded and reported like disk selectors (:mod:`._cel`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ._cel import _SAMPLE_DISK
from ._errors import SelectorError
from ._limits import MAX_SELECTOR_LENGTH
from ._pretty_size import pretty_size

if TYPE_CHECKING:
    from ._disk import DiskDescription


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeDescription:
    """One discovered volume as a volume selector sees it (``volume.partition_label``, ``volume.name``, ...).

    Field names are those of Talos' block.DiscoveredVolumeSpec, so a selector written for Talos works
    unchanged. ``name`` is the probed signature (``xfs``, ``ext4``, ``luks``), ``label`` and ``uuid`` the
    filesystem's, ``type`` is ``partition`` or ``disk``; ``pretty_size`` is Talos' rendering of ``size``
    (`pretty_size`) unless given. ``block_size``, ``filesystem_block_size`` and ``probed_size`` are read
    from the superblock as Talos' probe reads them (0 where the format has none: LUKS, LVM2, nothing);
    ``io_size`` is the disk's I/O size (512 on a disk image) and ``device_path`` the device's sysfs
    directory (empty on a disk image), as in DiscoveredVolumeSpec.
    """

    dev_path: str
    size: int
    sector_size: int = 512
    io_size: int = 0
    name: str = ""
    uuid: str = ""
    label: str = ""
    block_size: int = 0
    filesystem_block_size: int = 0
    probed_size: int = 0
    partition_uuid: str = ""
    partition_type: str = ""
    partition_label: str = ""
    partition_index: int = 0
    type: str = "partition"
    device_path: str = ""
    parent: str = ""
    parent_dev_path: str = ""
    pretty_size: str = ""
    offset: int = 0

    def __post_init__(self) -> None:
        if not self.pretty_size:  # Talos fills it from the size (humanize.Bytes)
            object.__setattr__(self, "pretty_size", pretty_size(self.size))


VOLUME_FIELDS: frozenset[str] = frozenset(f.name for f in fields(VolumeDescription))
#: Fields that are unsigned in Talos' protobuf (CEL ``uint``: compare with ``1u``, ``10u * GiB``).
VOLUME_UINT_FIELDS: frozenset[str] = frozenset(
    {
        "size",
        "sector_size",
        "io_size",
        "block_size",
        "filesystem_block_size",
        "probed_size",
        "partition_index",
        "offset",
    }
)

#: Talos' volume fields volumed's discovery does not fill, refused by name when a selector is compiled (a
#: selector on one would match as if every volume had 0 or ""). None today: the I/O size, the superblock's
#: sizes and the sysfs path are discovered as Talos discovers them.
UNPROBED_VOLUME_FIELDS: frozenset[str] = frozenset()

_SAMPLE_VOLUME = VolumeDescription(
    dev_path="/dev/sda1",
    size=1024**3,
    name="xfs",
    uuid="sample",
    label="sample",
    partition_uuid="sample",
    partition_type="sample",
    partition_label="sample",
    partition_index=1,
    parent="sda",
    parent_dev_path="/dev/sda",
    pretty_size="1.0 GiB",
    io_size=512,
    block_size=512,
    filesystem_block_size=4096,
    probed_size=1024**3,
    device_path="/sys/devices/sample/block/sda/sda1",
)


@dataclass(frozen=True, eq=False)
class VolumeSelector:
    """A compiled volume selector: build one with :func:`compile_volume_selector`.

    Attributes:
        expression: the CEL text as written in the document.
    """

    expression: str
    _program: Any = field(repr=False, compare=False)

    def matches(self, volume: VolumeDescription, disk: DiskDescription | None) -> bool:
        """Whether ``volume`` (on ``disk``, None when its disk is not known) is selected.

        Raises:
            SelectorError: the expression fails on this volume (``disk.*`` without a disk, wrong types), is
                not boolean, or takes more than the step limit. The message does not quote the expression.
        """
        from ._cel_engine import evaluate_volume

        return evaluate_volume(self._program, volume, disk)


def compile_volume_selector(expression: str) -> VolumeSelector:
    """Compile a volume selector and check it against a sample volume on a sample disk.

    Raises:
        SelectorError: an empty text, a syntax error, a ``volume.<field>`` or ``disk.<field>`` that does not
            exist, a ``volume.<field>`` volumed does not probe (`UNPROBED_VOLUME_FIELDS`), an undeclared
            name, a result that is not a boolean, or past a limit. The message names lines and columns (and
            an unprobed field), never the expression's text.
    """
    if not expression:
        raise SelectorError("volume selector is required")
    if len(expression) > MAX_SELECTOR_LENGTH:
        raise SelectorError(f"too long: more than {MAX_SELECTOR_LENGTH} characters (the limit)")
    from ._cel_engine import compile_program

    selector = VolumeSelector(
        expression,
        compile_program(
            expression,
            variables={"volume": VOLUME_FIELDS},
            unsupported={"volume": UNPROBED_VOLUME_FIELDS},
        ),
    )
    try:
        selector.matches(_SAMPLE_VOLUME, _SAMPLE_DISK)
    except SelectorError as error:
        message = str(error).removeprefix("volume selector: ")
        if message.startswith(("undeclared reference", "no such member", "expression output type")) or (
            "(the limit)" in message
        ):
            raise SelectorError(message) from None
    return selector

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

if TYPE_CHECKING:
    from ._disk import DiskDescription


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeDescription:
    """One discovered volume as a volume selector sees it (``volume.partition_label``, ``volume.name``, ...).

    Field names are those of Talos' block.DiscoveredVolumeSpec, so a selector written for Talos works
    unchanged. ``name`` is the probed signature (``xfs``, ``ext4``, ``luks``), ``label`` and ``uuid`` the
    filesystem's, ``type`` is ``partition`` or ``disk``. Fields volumed does not probe (``block_size``,
    ``filesystem_block_size``, ``probed_size``, ``io_size``, ``device_path``, ``pretty_size``) are 0 or empty.
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
            exist, an undeclared name, a result that is not a boolean, or past a limit. The message names
            lines and columns, never the expression's text.
    """
    if not expression:
        raise SelectorError("volume selector is required")
    if len(expression) > MAX_SELECTOR_LENGTH:
        raise SelectorError(f"too long: more than {MAX_SELECTOR_LENGTH} characters (the limit)")
    from ._cel_engine import compile_program

    selector = VolumeSelector(expression, compile_program(expression, variables={"volume": VOLUME_FIELDS}))
    try:
        selector.matches(_SAMPLE_VOLUME, _SAMPLE_DISK)
    except SelectorError as error:
        message = str(error).removeprefix("volume selector: ")
        if message.startswith(("undeclared reference", "no such member", "expression output type")) or (
            "(the limit)" in message
        ):
            raise SelectorError(message) from None
    return selector

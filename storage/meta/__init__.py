"""The META partition (Talos ADV): two checksummed 256 KiB copies of a tag -> value store. No runtime.

:class:`MetaPartition` reads and writes it on a device or an image region; :mod:`.c_adv` holds the pure
block format. Tag 9 holds STATE's encryption config (its JSON lives in :mod:`volumed.config`), tag 0x0f the
node UUID override.
"""

from ._errors import MetaCorruptError as MetaCorruptError
from ._errors import MetaDeviceError as MetaDeviceError
from ._errors import MetaError as MetaError
from ._errors import MetaValueError as MetaValueError
from ._partition import DEFAULT_LOCK_TIMEOUT as DEFAULT_LOCK_TIMEOUT
from ._partition import CopyStatus as CopyStatus
from ._partition import MetaContents as MetaContents
from ._partition import MetaPartition as MetaPartition
from ._partition import MetaState as MetaState
from ._tags import MetaTag as MetaTag
from ._tags import parse_tag as parse_tag
from ._tags import tag_name as tag_name
from ._uuid import read_uuid_override as read_uuid_override
from ._uuid import write_uuid_override as write_uuid_override
from .c_adv import ADV_SIZE as ADV_SIZE
from .c_adv import BLOCK_LENGTH as BLOCK_LENGTH
from .c_adv import DATA_LENGTH as DATA_LENGTH
from .c_adv import META_PARTITION_LABEL as META_PARTITION_LABEL
from .c_adv import PARTITION_SIZE as PARTITION_SIZE
from .c_adv import InvalidBlockError as InvalidBlockError
from .c_adv import decode_block as decode_block
from .c_adv import encode_block as encode_block

__all__ = [
    "ADV_SIZE",
    "BLOCK_LENGTH",
    "DATA_LENGTH",
    "DEFAULT_LOCK_TIMEOUT",
    "META_PARTITION_LABEL",
    "PARTITION_SIZE",
    "CopyStatus",
    "InvalidBlockError",
    "MetaContents",
    "MetaCorruptError",
    "MetaDeviceError",
    "MetaError",
    "MetaPartition",
    "MetaState",
    "MetaTag",
    "MetaValueError",
    "decode_block",
    "encode_block",
    "parse_tag",
    "read_uuid_override",
    "tag_name",
    "write_uuid_override",
]

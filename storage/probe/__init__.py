"""Signature probing: which format (LUKS, xfs, ext4, swap, GPT, ...) a region carries, and wiping them."""

from ._detectors import ReadAt as ReadAt
from ._probe import is_zeroed as is_zeroed
from ._probe import probe as probe
from ._probe import probe_all as probe_all
from ._probe import probe_path as probe_path
from ._probe import probe_region as probe_region
from ._probe import wipe_region as wipe_region
from ._signature import BLKID_TYPES as BLKID_TYPES
from ._signature import Signature as Signature
from ._signature import SignatureType as SignatureType

__all__ = [
    "BLKID_TYPES",
    "ReadAt",
    "Signature",
    "SignatureType",
    "is_zeroed",
    "probe",
    "probe_all",
    "probe_path",
    "probe_region",
    "wipe_region",
]

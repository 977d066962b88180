"""Signature probing: which format (LUKS, xfs, ext4, swap, GPT, ...) a region carries, whether it is provably
blank (with libblkid as a second opinion), and wiping them."""

from ._blkid import BlkidError as BlkidError
from ._blkid import BlkidReport as BlkidReport
from ._blkid import blkid_probe as blkid_probe
from ._content import ContentKind as ContentKind
from ._content import RegionContent as RegionContent
from ._content import examine_region as examine_region
from ._detectors import ReadAt as ReadAt
from ._probe import blank_sample_ranges as blank_sample_ranges
from ._probe import first_nonzero as first_nonzero
from ._probe import first_signature as first_signature
from ._probe import is_secondary_only as is_secondary_only
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
    "BlkidError",
    "BlkidReport",
    "ContentKind",
    "ReadAt",
    "RegionContent",
    "Signature",
    "SignatureType",
    "blank_sample_ranges",
    "blkid_probe",
    "examine_region",
    "first_nonzero",
    "first_signature",
    "is_secondary_only",
    "is_zeroed",
    "probe",
    "probe_all",
    "probe_path",
    "probe_region",
    "wipe_region",
]

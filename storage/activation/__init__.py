"""Activation backends: turn an unlocked LUKS2 data segment into a decrypted block device (dm, fuse, auto)."""

import typing as _typing

from volumed._lazy import lazy_attributes as _lazy_attributes

from ._ciphers import cipher_problem as cipher_problem
from ._errors import ActivationBusyError as ActivationBusyError
from ._errors import ActivationConflictError as ActivationConflictError
from ._errors import ActivationError as ActivationError
from ._errors import BackendUnavailableError as BackendUnavailableError
from ._hardening import forbid_core_dumps as forbid_core_dumps
from ._hardening import is_dumpable as is_dumpable
from ._model import ActivationStatus as ActivationStatus
from ._model import BackendName as BackendName
from ._model import DataSegment as DataSegment
from ._model import check_flags as check_flags
from ._model import check_name as check_name
from ._model import mapping_name as mapping_name
from ._protocol import Activator as Activator

if _typing.TYPE_CHECKING:
    from ._auto import BackendChoice as BackendChoice
    from ._auto import backend_availability as backend_availability
    from ._auto import backend_problem as backend_problem
    from ._auto import dm_unavailable_reason as dm_unavailable_reason
    from ._auto import fuse_unavailable_reason as fuse_unavailable_reason
    from ._auto import privilege_problem as privilege_problem
    from ._auto import select_activator as select_activator
    from ._dm import CryptTable as CryptTable
    from ._dm import DmActivator as DmActivator
    from ._dm import crypt_table as crypt_table
    from ._dm import dm_uuid as dm_uuid
    from ._fuse import FuseActivator as FuseActivator
    from ._fuse import FuseServerUse as FuseServerUse
    from ._fuse import fuse_servers_over as fuse_servers_over

# The backends are imported when first used: a volume's FUSE server process needs none of them.
__getattr__ = _lazy_attributes(
    __name__,
    {
        **dict.fromkeys(
            (
                "BackendChoice",
                "backend_availability",
                "backend_problem",
                "backend_problem",
                "dm_unavailable_reason",
                "forbid_core_dumps",
                "fuse_unavailable_reason",
                "is_dumpable",
                "privilege_problem",
            ),
            "._auto",
        ),
        "select_activator": "._auto",
        **dict.fromkeys(("CryptTable", "DmActivator", "crypt_table", "dm_uuid"), "._dm"),
        **dict.fromkeys(("FuseActivator", "FuseServerUse", "fuse_servers_over"), "._fuse"),
    },
)

__all__ = [
    "ActivationBusyError",
    "ActivationConflictError",
    "ActivationError",
    "ActivationStatus",
    "Activator",
    "BackendChoice",
    "BackendName",
    "BackendUnavailableError",
    "CryptTable",
    "DataSegment",
    "DmActivator",
    "FuseActivator",
    "FuseServerUse",
    "backend_availability",
    "backend_problem",
    "check_flags",
    "check_name",
    "cipher_problem",
    "crypt_table",
    "dm_unavailable_reason",
    "dm_uuid",
    "forbid_core_dumps",
    "fuse_servers_over",
    "fuse_unavailable_reason",
    "is_dumpable",
    "mapping_name",
    "privilege_problem",
    "select_activator",
]

"""Activation backends: turn an unlocked LUKS2 data segment into a decrypted block device (dm, fuse, auto)."""

from ._auto import BackendChoice as BackendChoice
from ._auto import backend_availability as backend_availability
from ._auto import dm_unavailable_reason as dm_unavailable_reason
from ._auto import fuse_unavailable_reason as fuse_unavailable_reason
from ._auto import select_activator as select_activator
from ._dm import CryptTable as CryptTable
from ._dm import DmActivator as DmActivator
from ._dm import crypt_table as crypt_table
from ._dm import dm_uuid as dm_uuid
from ._errors import ActivationBusyError as ActivationBusyError
from ._errors import ActivationConflictError as ActivationConflictError
from ._errors import ActivationError as ActivationError
from ._errors import BackendUnavailableError as BackendUnavailableError
from ._fuse import FuseActivator as FuseActivator
from ._model import ActivationStatus as ActivationStatus
from ._model import BackendName as BackendName
from ._model import DataSegment as DataSegment
from ._model import check_name as check_name
from ._model import mapping_name as mapping_name
from ._protocol import Activator as Activator

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
    "backend_availability",
    "check_name",
    "crypt_table",
    "dm_unavailable_reason",
    "dm_uuid",
    "fuse_unavailable_reason",
    "mapping_name",
    "select_activator",
]

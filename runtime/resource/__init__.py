"""The resource model: metadata, pointers, typed frozen specs, definitions, registry and queries."""

from ._definition import PrintColumn as PrintColumn
from ._definition import ResourceDefinition as ResourceDefinition
from ._frozen_map import FrozenMap as FrozenMap
from ._metadata import EPOCH as EPOCH
from ._metadata import Metadata as Metadata
from ._metadata import Phase as Phase
from ._pointer import Kind as Kind
from ._pointer import Pointer as Pointer
from ._query import IDQuery as IDQuery
from ._query import LabelOp as LabelOp
from ._query import LabelQuery as LabelQuery
from ._query import LabelTerm as LabelTerm
from ._registry import DefinitionConflictError as DefinitionConflictError
from ._registry import ResourceRegistry as ResourceRegistry
from ._registry import UnknownResourceTypeError as UnknownResourceTypeError
from ._resource import Resource as Resource
from ._resource import SpecT as SpecT
from ._spec import SensitiveSpec as SensitiveSpec
from ._spec import Spec as Spec

__all__ = [
    "EPOCH",
    "DefinitionConflictError",
    "FrozenMap",
    "IDQuery",
    "Kind",
    "LabelOp",
    "LabelQuery",
    "LabelTerm",
    "Metadata",
    "Phase",
    "Pointer",
    "PrintColumn",
    "Resource",
    "ResourceDefinition",
    "ResourceRegistry",
    "SensitiveSpec",
    "Spec",
    "SpecT",
    "UnknownResourceTypeError",
]

"""The field names of the documents volumed reads: the only text of a document an error may name."""

from __future__ import annotations

import functools
import types
from typing import Any, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel

# Fields of Talos' schema volumed does not implement, named as such instead of "unknown field".
TALOS_UNSUPPORTED_FIELDS = frozenset({"mount", "trim", "scrub", "xfs"})


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, types.UnionType, list, tuple) or get_args(annotation):
        return [model for argument in get_args(annotation) for model in _models_in(argument)]
    return []


@functools.cache
def field_names() -> frozenset[str]:
    """Every field name and alias of the volume documents volumed reads, at any depth, and Talos' others."""
    from ._documents import UserVolumeConfigDocument, VolumeConfigDocument
    from ._other_volumes import (
        ExistingVolumeConfigDocument,
        RawVolumeConfigDocument,
        SwapVolumeConfigDocument,
        ZswapConfigDocument,
    )

    names: set[str] = set(TALOS_UNSUPPORTED_FIELDS)
    pending: list[type[BaseModel]] = [
        VolumeConfigDocument,
        UserVolumeConfigDocument,
        RawVolumeConfigDocument,
        ExistingVolumeConfigDocument,
        SwapVolumeConfigDocument,
        ZswapConfigDocument,
    ]
    seen: set[type[BaseModel]] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(name)
            if info.alias:
                names.add(info.alias)
            if isinstance(info.validation_alias, str):
                names.add(info.validation_alias)
            elif isinstance(info.validation_alias, AliasChoices):
                names.update(choice for choice in info.validation_alias.choices if isinstance(choice, str))
            pending.extend(_models_in(info.annotation))
    return frozenset(names)

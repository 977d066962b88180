"""The shared base of every document model: strict types, unknown fields rejected, immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Talos decodes machine config strictly: an unknown field or a wrong type is an error, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

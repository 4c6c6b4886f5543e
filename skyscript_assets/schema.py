"""Data contracts shared by stages, the catalog writers and the exports (pydantic 2)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DramaInfo(BaseModel):
    """The optional drama.json beside the episodes. Unknown keys are kept, not rejected."""

    model_config = ConfigDict(extra="allow")

    title: str | None = None
    language: str | None = Field(default=None, max_length=32)
    source: str | None = None


class LossRecord(BaseModel):
    """Something a stage could not use: `reason` is a short kind, `detail` the one-line message."""

    stage: str
    item: str
    reason: str
    detail: str

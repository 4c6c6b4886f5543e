"""The per-episode step contract: what a stage returns for one episode.

A per-episode asset hands its stage the pending episodes' inputs; the stage returns one
`EpisodeResult` each (in any order), and the Dagster layer turns it into catalog rows,
losses and flags written in one transaction per episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Generic, TypeVar

from skyscript_assets.schema import FlagRecord, LossRecord

T = TypeVar("T")


@dataclass
class EpisodeResult(Generic[T]):
    """What a stage made of one episode.

    `given` counts the items the stage was handed (keyframes, people, objects...): the
    denominator of its loss rate, whatever the cause of a loss. `not_run` says why the
    stage did not run at all (weights absent): such an episode has no loss rate, not 0 %."""

    episode_id: str
    results: list[T] = field(default_factory=list)
    losses: list[LossRecord] = field(default_factory=list)
    flags: list[FlagRecord] = field(default_factory=list)
    given: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    model_id: str = ""
    not_run: str | None = None

    @property
    def transient_losses(self) -> int:
        return sum(1 for loss in self.losses if loss.transient)


def version_of(stage: ModuleType) -> str:
    """The version a stage module declares for its output (its STAGE_VERSION): what progress
    marks and provenance record, so a stage whose output changes is re-run."""
    return stage.STAGE_VERSION

"""The one runner behind every per-episode asset (keyframes, raw_mllm_json, cleaned_json,
detections, character_refinements).

An asset describes its step (`EpisodeStep`: inputs per episode, what a result depends on,
the stage, how a result becomes rows) and `run_episode_step` does the rest the same way
for all of them: skip episodes already done at this stage version on the same input, run
the stage on the others, write each episode's rows, losses, flags and progress mark in one
transaction, forget episodes no longer in the drama, and sum up the whole drama (earlier
runs included) for the asset's metadata and checks.

An episode with a transient loss (a failed request) is written but not marked done, so the
next run retries it; `redo` re-runs every episode.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import dagster as dg

from skyscript_assets.catalog import Base, Catalog, EpisodeProgress, Flag, LockHeld, Loss, Provenance, queries
from skyscript_assets.defs.platform.reporting import flag_rows, loss_rows, provenance
from skyscript_assets.stages.step import EpisodeResult

I = TypeVar("I")  # noqa: E741  (an episode's input to the stage)


def input_digest(*parts) -> str:
    """A stable hash of whatever an episode's result depends on (inputs and settings)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class EpisodeStep(Generic[I]):
    """A per-episode asset as configuration: its stage and how the results are stored."""

    stage_version: str
    inputs: dict[str, I]  # episode id -> the stage's input, in episode order (every current episode)
    digest: Callable[[I], str]  # what an episode's result depends on (its input and the settings)
    run: Callable[[list[tuple[str, I]]], Iterable[EpisodeResult]]  # the stage over pending episodes
    rows: Callable[[EpisodeResult, Provenance], Sequence[Base]]  # catalog rows of one result
    tables: Sequence[type[Base]]  # the tables `rows` fills (replaced per episode)
    model_id: str = ""


@dataclass
class StepReport:
    """The whole drama after a run, earlier runs' episodes included."""

    processed: int
    skipped: int
    summaries: dict[str, dict]  # episode id -> its summary
    losses: list[Loss] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)

    def total(self, key: str) -> int | float:
        """A summary figure summed over the drama's episodes."""
        return sum(s.get(key) or 0 for s in self.summaries.values())

    @property
    def given(self) -> int:
        return self.total("given")

    @property
    def lost(self) -> int:
        return self.total("lost")

    @property
    def not_run(self) -> str | None:
        """Why the stage did not run, when it ran on no episode that had something to do."""
        reasons = [s["not_run"] for s in self.summaries.values() if s.get("not_run")]
        ran = [s for s in self.summaries.values() if not s.get("not_run") and s.get("given")]
        return reasons[0] if reasons and not ran else None

    def loss_rate(self) -> float | None:
        return self.lost / self.given if self.given else None


def run_episode_step(
    context: dg.AssetExecutionContext, db: Catalog, step: EpisodeStep, *, redo: bool = False
) -> StepReport:
    """Run the step for the drama, alone: a second run of the same asset on the same drama stops in one line."""
    with exclusive(context, db):
        return _run(context, db, step, redo=redo)


@contextmanager
def exclusive(context: dg.AssetExecutionContext, db: Catalog) -> Iterator[None]:
    """This asset for this drama in one run at a time (two runs would both do the work and race on its rows)."""
    try:
        with db.exclusive(f"{context.asset_key.to_user_string()}@{context.partition_key}"):
            yield
    except LockHeld as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


def _run(context: dg.AssetExecutionContext, db: Catalog, step: EpisodeStep, *, redo: bool) -> StepReport:
    prov = provenance(context, step.stage_version, step.model_id)
    drama_id, asset_key = prov.drama_id, prov.asset_key
    db.forget_episodes_except(
        asset_key=asset_key, partition=drama_id, keep=set(step.inputs), tables=[*step.tables, Loss, Flag]
    )
    hashes = {episode: step.digest(value) for episode, value in step.inputs.items()}
    todo = _pending(db, prov, hashes, redo=redo)
    context.log.info(f"{drama_id}: {len(todo)} of {len(hashes)} episodes to process ({asset_key})")
    if todo:
        for number, result in enumerate(step.run([(e, step.inputs[e]) for e in todo]), start=1):
            _write(db, prov.with_model(result.model_id or prov.model_id), result, step, hashes[result.episode_id])
            context.log.info(
                f"[{number}/{len(todo)}] {result.episode_id}: {len(result.results)} results, "
                f"{len(result.losses)} lost of {result.given}"
                + (f", not run: {result.not_run}" if result.not_run else "")
            )
    return StepReport(
        processed=len(todo),
        skipped=len(hashes) - len(todo),
        summaries=queries.step_summaries(db, drama_id, asset_key),
        losses=queries.losses(db, drama_id, asset_key=asset_key),
        flags=queries.flags(db, drama_id, asset_key=asset_key),
    )


def _pending(db: Catalog, prov: Provenance, hashes: dict[str, str], *, redo: bool) -> list[str]:
    """Episodes (in order) without a finished, up-to-date result; transient losses are not done."""
    if redo:
        return list(hashes)
    done = db.done_episodes(asset_key=prov.asset_key, partition=prov.drama_id, stage_version=prov.stage_version)
    return [
        episode
        for episode, digest in hashes.items()
        if episode not in done
        or done[episode].input_hash != digest
        or (done[episode].summary or {}).get("transient", 0)
    ]


def _write(db: Catalog, prov: Provenance, result: EpisodeResult, step: EpisodeStep, input_hash: str) -> None:
    """Replace the episode's rows (and its losses and flags) and mark it, atomically."""
    summary = {
        **result.summary,
        "given": result.given,
        "lost": len(result.losses),
        "flagged": len(result.flags),
        "transient": result.transient_losses,
        "not_run": result.not_run,
    }
    rows = [
        *step.rows(result, prov),
        *loss_rows(result.losses, prov, result.episode_id),
        *flag_rows(result.flags, prov, result.episode_id),
    ]
    db.replace_episode_rows(
        asset_key=prov.asset_key,
        partition=prov.drama_id,
        episode_id=result.episode_id,
        rows=rows,
        tables=[*step.tables, Loss, Flag],
        progress=EpisodeProgress(
            drama_id=prov.drama_id,
            episode_id=result.episode_id,
            input_hash=input_hash,
            summary=summary,
            **prov.columns(),
        ),
    )


def each_episode(
    process: Callable[[str, Any], EpisodeResult],
) -> Callable[[list[tuple[str, Any]]], Iterator[EpisodeResult]]:
    """A step's `run` from a function of one episode (the stages whose model is already loaded)."""

    def run(pending: list[tuple[str, Any]]) -> Iterator[EpisodeResult]:
        for episode_id, value in pending:
            yield process(episode_id, value)

    return run

"""keyframes: shots and keyframes of every episode of a drama, with their quality verdicts."""

import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed

import dagster as dg
from sqlalchemy import select

from skyscript_assets.catalog import Episode, Keyframe, Loss, Shot
from skyscript_assets.schema import LossRecord
from skyscript_assets.stages.video.keyframes import (
    STAGE_VERSION,
    EpisodeJob,
    EpisodeOutcome,
    KeyframeSettings,
    decode_threads,
    process_episode,
)
from skyscript_assets.defs.ingest.drama_manifest import drama_manifest
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.episode_steps import pending_episodes, write_episode
from skyscript_assets.defs.platform.reporting import provenance
from skyscript_assets.defs.platform.resources import ArtifactStore, CatalogResource

INVALID_KEYFRAME_WARN_RATE = 0.08  # the paper lost ~4 % of keyframes to blur and occlusion


class KeyframesConfig(dg.Config):
    seconds_per_keyframe: float = 4.0
    max_long_side: int = 768
    workers: int = 0  # parallel episode processes; 0 = one per CPU core
    decode_threads: int = 0  # decoder threads per episode (segments of whole GOPs); 0 = the cores per process, at most 4
    redo: bool = False  # re-extract episodes already done at this stage version


@dg.asset(
    partitions_def=dramas_partitions,
    deps=[drama_manifest],
    group_name="video",
    kinds={"python", "video"},
    description="Shot boundaries (cuts, fades, dissolves) and quality-filtered keyframes per episode, "
    "one streaming decode each (split over cores at keyframes), episodes in parallel processes; resumable per episode.",
    check_specs=[
        dg.AssetCheckSpec("invalid_keyframe_rate", asset="keyframes",
                          description=f"Share of keyframes filtered out (warns above {INVALID_KEYFRAME_WARN_RATE:.0%})."),
        dg.AssetCheckSpec("episodes_without_valid_keyframe", asset="keyframes", blocking=True,
                          description="Every episode must give at least one valid keyframe."),
    ],
)
def keyframes(
    context: dg.AssetExecutionContext,
    config: KeyframesConfig,
    catalog: CatalogResource,
    artifacts: ArtifactStore,
) -> dg.MaterializeResult:
    drama_id = context.partition_key
    db = catalog.get()
    prov = provenance(context, STAGE_VERSION)
    with db.session() as session:
        episodes = list(session.scalars(select(Episode).where(Episode.drama_id == drama_id).order_by(Episode.position)))
    if not episodes:
        raise dg.Failure(description=f"{drama_id} has no episodes in the catalog; materialize drama_manifest first",
                         allow_retries=False)
    db.forget_episodes_except(asset_key=prov["asset_key"], partition=drama_id,
                              keep={e.episode_id for e in episodes}, tables=[Shot, Keyframe, Loss])
    pending = set(pending_episodes(db, asset_key=prov["asset_key"], partition=drama_id, stage_version=STAGE_VERSION,
                                   input_hashes={e.episode_id: e.sha256 for e in episodes}, redo=config.redo))
    todo = [e for e in episodes if e.episode_id in pending]
    context.log.info(f"{drama_id}: {len(todo)} of {len(episodes)} episodes to process ({len(episodes) - len(todo)} already done)")

    processes = min(len(todo), config.workers or os.cpu_count() or 1)
    settings = KeyframeSettings(seconds_per_keyframe=config.seconds_per_keyframe, max_long_side=config.max_long_side,
                                decode_threads=decode_threads(config.decode_threads, episodes_at_once=processes))
    jobs = [EpisodeJob(e.episode_id, e.uri, artifacts.uri(drama_id, "keyframes", e.episode_id), settings) for e in todo]
    by_id = {e.episode_id: e for e in todo}
    video_seconds = wall_seconds = 0.0
    for number, outcome in enumerate(_run_jobs(jobs, processes), start=1):
        episode = by_id[outcome.episode_id]
        _record_episode(db, drama_id, episode, outcome, prov)
        if outcome.result is not None:
            video_seconds += outcome.result.duration_s
            wall_seconds += outcome.result.seconds
            invalid = sum(not k.valid for k in outcome.result.keyframes)
            context.log.info(f"[{number}/{len(jobs)}] {episode.episode_id}: {len(outcome.result.shots)} shots, "
                             f"{len(outcome.result.keyframes)} keyframes ({invalid} invalid), "
                             f"{outcome.result.duration_s / max(outcome.result.seconds, 1e-9):.1f}x realtime")
        else:
            context.log.warning(f"[{number}/{len(jobs)}] loss [{outcome.loss_reason}] {outcome.loss_detail}")

    return _summary(db, drama_id, prov["asset_key"], processed=len(jobs), skipped=len(episodes) - len(jobs),
                    video_seconds=video_seconds, wall_seconds=wall_seconds,
                    parallelism={"episode_processes": processes, "decode_threads_per_episode": settings.decode_threads})


def _run_jobs(jobs: list[EpisodeJob], count: int):
    """Outcomes as episodes finish; in-process for one process, else a spawn-based pool
    (forking a process that holds Dagster's threads and gRPC channels is unsafe)."""
    if count <= 1:
        yield from (process_episode(job) for job in jobs)
        return
    with ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(process_episode, job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


def _record_episode(db, drama_id: str, episode: Episode, outcome: EpisodeOutcome, prov: dict) -> None:
    shots, frames = [], []
    summary: dict = {}
    if outcome.result is not None:
        result = outcome.result
        shots = [Shot(drama_id=drama_id, episode_id=episode.episode_id, shot_index=s.index, start_s=s.start_s,
                      end_s=s.end_s, start_frame=s.start_frame, end_frame=s.end_frame,
                      transition_in=s.transition_in, **prov) for s in result.shots]
        frames = [Keyframe(drama_id=drama_id, episode_id=episode.episode_id, shot_index=k.shot_index,
                           keyframe_index=k.keyframe_index, time_s=k.time_s, frame=k.frame, valid=k.valid,
                           invalid_reason=k.invalid_reason, uri=k.path, width=k.width, height=k.height,
                           sharpness=k.sharpness, **prov) for k in result.keyframes]
        summary = {"duration_s": result.duration_s, "seconds": round(result.seconds, 3), "shots": len(shots),
                   "keyframes": len(frames), "decode_errors": result.decode_errors}
    losses = [] if outcome.result is not None else [
        LossRecord(stage="keyframes", item=episode.episode_id, reason=outcome.loss_reason or "failed",
                   detail=outcome.loss_detail or "")]
    write_episode(db, prov, episode.episode_id, rows=[*shots, *frames], losses=losses, tables=[Shot, Keyframe],
                  input_hash=episode.sha256, summary=summary)


def _summary(db, drama_id: str, asset_key: str, *, processed: int, skipped: int,
             video_seconds: float, wall_seconds: float, parallelism: dict[str, int]) -> dg.MaterializeResult:
    """Metadata and checks over the whole drama, including episodes done by earlier runs."""
    with db.session() as session:
        rows = session.execute(select(Keyframe.episode_id, Keyframe.valid, Keyframe.invalid_reason)
                               .where(Keyframe.partition == drama_id, Keyframe.asset_key == asset_key)).all()
        shot_count = len(session.scalars(select(Shot.id).where(Shot.partition == drama_id, Shot.asset_key == asset_key)).all())
        episodes = list(session.scalars(select(Episode.episode_id).where(Episode.drama_id == drama_id)))
        lost = set(session.scalars(select(Loss.episode_id).where(Loss.partition == drama_id, Loss.asset_key == asset_key)))
    reasons = Counter(reason for _, valid, reason in rows if not valid)
    invalid_rate = sum(reasons.values()) / len(rows) if rows else 0.0
    with_valid = {episode for episode, valid, _ in rows if valid}
    without = sorted(set(episodes) - with_valid)
    table = ["| reason | keyframes | share |", "|---|---|---|"] + [
        f"| {reason} | {count} | {count / len(rows):.1%} |" for reason, count in reasons.most_common()]
    return dg.MaterializeResult(
        metadata={
            "episodes_processed": processed,
            "episodes_skipped": skipped,
            "episodes_lost": len(lost - {None}),
            "shots": shot_count,
            "keyframes": len(rows),
            "valid_keyframes": len(rows) - sum(reasons.values()),
            "invalid_rate": round(invalid_rate, 4),
            "invalid_reasons": dg.MetadataValue.md("\n".join(table) if reasons else "No invalid keyframe."),
            "video_s_per_wall_s": round(video_seconds / wall_seconds, 2) if wall_seconds else 0.0,
            **parallelism,
        },
        check_results=[
            dg.AssetCheckResult(check_name="invalid_keyframe_rate", passed=invalid_rate <= INVALID_KEYFRAME_WARN_RATE,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"invalid_rate": round(invalid_rate, 4), **{k: v for k, v in reasons.items()}}),
            dg.AssetCheckResult(check_name="episodes_without_valid_keyframe", passed=not without,
                                severity=dg.AssetCheckSeverity.ERROR,
                                description=f"no valid keyframe in: {', '.join(without[:20])}" if without else None,
                                metadata={"episodes": len(without)}),
        ],
    )

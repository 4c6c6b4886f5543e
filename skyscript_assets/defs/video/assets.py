"""keyframes: shots and keyframes of every episode of a drama, with their quality verdicts."""

from collections import Counter

import dagster as dg

from skyscript_assets.catalog import Keyframe, Shot, queries
from skyscript_assets.defs.platform.episode_steps import EpisodeStep, StepReport, run_episode_step
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.reporting import check, drama_check, reasons_table
from skyscript_assets.defs.platform.resources import ArtifactsResource, CatalogResource
from skyscript_assets.stages.step import version_of
from skyscript_assets.stages.video import keyframes as keyframes_stage
from skyscript_assets.stages.video.keyframes import (
    EpisodeJob,
    KeyframeSettings,
    decode_threads,
    episode_processes,
    extract_episodes,
)

INVALID_KEYFRAME_WARN_RATE = 0.08  # the paper lost ~4 % of keyframes to blur and occlusion


class KeyframesConfig(dg.Config):
    seconds_per_keyframe: float = 4.0
    max_long_side: int = 768
    workers: int = 0  # parallel episode processes; 0 = one per two CPU cores (each splits its decode over two)
    decode_threads: int = 0  # decoder threads per episode (segments of whole GOPs); 0 = the cores per process, 2 to 4
    learned_shots: str = "auto"  # TransNetV2 second opinion on small changes: auto (where CUDA is), on (CPU too), off
    redo: bool = False  # re-extract episodes already done at this stage version


@dg.asset(
    partitions_def=dramas_partitions,
    deps=["drama_manifest"],
    group_name="video",
    kinds={"python", "video"},
    description="Shot boundaries (cuts, fades, dissolves) and quality-filtered keyframes per episode, "
    "one streaming decode each (split over cores at keyframes), episodes in parallel processes; "
    "resumable per episode.",
    check_specs=[
        drama_check(
            "invalid_keyframe_rate",
            asset="keyframes",
            description=f"Share of keyframes filtered out (warns above {INVALID_KEYFRAME_WARN_RATE:.0%}).",
        ),
        drama_check(
            "episodes_without_valid_keyframe",
            asset="keyframes",
            blocking=True,
            description="Every episode must give at least one valid keyframe.",
        ),
    ],
)
def keyframes(
    context: dg.AssetExecutionContext, config: KeyframesConfig, catalog: CatalogResource, artifacts: ArtifactsResource
) -> dg.MaterializeResult:
    db, store, drama_id = catalog.get(), artifacts.get(), context.partition_key
    episodes = {e.episode_id: e for e in queries.episodes(db, drama_id)}
    if not episodes:
        raise dg.Failure(
            description=f"{drama_id} has no episodes in the catalog; materialize drama_manifest first",
            allow_retries=False,
        )
    processes = episode_processes(len(episodes), config.workers)
    settings = KeyframeSettings(
        seconds_per_keyframe=config.seconds_per_keyframe,
        max_long_side=config.max_long_side,
        decode_threads=decode_threads(config.decode_threads, episodes_at_once=processes),
        learned_shots=config.learned_shots,
    )

    def run(pending):
        jobs = [EpisodeJob(e, episodes[e].uri, store.uri(drama_id, "keyframes", e), settings) for e, _ in pending]
        yield from extract_episodes(jobs, min(processes, len(jobs)))

    def rows(result, prov):
        return [
            row
            for r in result.results
            for row in (
                *(
                    Shot(
                        drama_id=drama_id,
                        episode_id=result.episode_id,
                        shot_index=s.index,
                        start_s=s.start_s,
                        end_s=s.end_s,
                        start_frame=s.start_frame,
                        end_frame=s.end_frame,
                        transition_in=s.transition_in,
                        **prov.columns(),
                    )
                    for s in r.shots
                ),
                *(
                    Keyframe(
                        drama_id=drama_id,
                        episode_id=result.episode_id,
                        shot_index=k.shot_index,
                        keyframe_index=k.keyframe_index,
                        time_s=k.time_s,
                        frame=k.frame,
                        valid=k.valid,
                        invalid_reason=k.invalid_reason,
                        uri=k.path,
                        width=k.width,
                        height=k.height,
                        sharpness=k.sharpness,
                        **prov.columns(),
                    )
                    for k in r.keyframes
                ),
            )
        ]

    report = run_episode_step(
        context,
        db,
        EpisodeStep(
            stage_version=version_of(keyframes_stage),
            inputs={e: episode.sha256 for e, episode in episodes.items()},
            digest=str,
            run=run,
            rows=rows,
            tables=[Shot, Keyframe],
        ),
        redo=config.redo,
    )
    return _summary(
        db,
        drama_id,
        report,
        parallelism={"episode_processes": processes, "decode_threads_per_episode": settings.decode_threads},
    )


def _summary(db, drama_id: str, report: StepReport, parallelism: dict[str, int]) -> dg.MaterializeResult:
    """Metadata and checks over the whole drama, including episodes done by earlier runs."""
    frames = queries.keyframes(db, drama_id)
    reasons = Counter(k.invalid_reason for k in frames if not k.valid)
    invalid_rate = sum(reasons.values()) / len(frames) if frames else 0.0
    without = sorted(set(report.summaries) - {k.episode_id for k in frames if k.valid})
    table = ["| reason | keyframes | share |", "|---|---|---|"] + [
        f"| {reason} | {count} | {count / len(frames):.1%} |" for reason, count in reasons.most_common()
    ]
    video_s, wall_s = report.total("duration_s"), report.total("seconds")
    return dg.MaterializeResult(
        metadata={
            "episodes_processed": report.processed,
            "episodes_skipped": report.skipped,
            "episodes_lost": report.lost,
            "shots": report.total("shots"),
            "keyframes": len(frames),
            "valid_keyframes": len(frames) - sum(reasons.values()),
            "invalid_rate": round(invalid_rate, 4),
            "invalid_reasons": dg.MetadataValue.md("\n".join(table) if reasons else "No invalid keyframe."),
            "video_s_per_wall_s": round(video_s / wall_s, 2) if wall_s else 0.0,
            "loss_reasons": reasons_table(report.losses),
            **parallelism,
        },
        check_results=[
            check(
                "invalid_keyframe_rate",
                invalid_rate <= INVALID_KEYFRAME_WARN_RATE,
                invalid_rate=round(invalid_rate, 4),
                **dict(reasons),
            ),
            check(
                "episodes_without_valid_keyframe",
                not without,
                severity="error",
                episodes=len(without),
                why=f"no valid keyframe in: {', '.join(without[:20])}" if without else None,
            ),
        ],
    )

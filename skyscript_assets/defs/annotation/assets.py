"""raw_mllm_json and cleaned_json: the multimodal LLM's verbatim annotations of the valid
keyframes, and those annotations parsed, repaired and validated against schema.FrameAnnotation."""

from collections import Counter

import dagster as dg

from skyscript_assets.catalog import FrameAnnotationRow, RawMllmOutput, queries
from skyscript_assets.defs.platform.episode_steps import (
    EpisodeStep,
    StepReport,
    each_episode,
    input_digest,
    run_episode_step,
)
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.placement import mllm_placement
from skyscript_assets.defs.platform.reporting import check, drama_check, reasons_table
from skyscript_assets.defs.platform.resources import ArtifactsResource, CatalogResource, MllmResource
from skyscript_assets.prompts import FRAME_ANNOTATION, load_prompt
from skyscript_assets.stages.annotation import annotate, clean_json
from skyscript_assets.stages.annotation.annotate import KeyframeInput, annotate_episode
from skyscript_assets.stages.annotation.clean_json import RawReply, clean_episode
from skyscript_assets.stages.step import version_of

MLLM = mllm_placement()
FRAME_LOSS_BLOCK_RATE = 0.05  # the paper lost ~4 % of pre-extracted data overall
UNPARSEABLE_WARN_RATE = 0.08


class AnnotationConfig(dg.Config):
    redo: bool = False  # re-run every episode, not only those without an up-to-date result


def keyframe_item(episode_id: str, keyframe_index: int) -> str:
    """The id a keyframe goes by in annotation rows and losses."""
    return f"{episode_id}/kf{keyframe_index:04d}"


@dg.asset(
    partitions_def=dramas_partitions,
    deps=["keyframes"],
    group_name="annotation",
    kinds={"python", "llm"},
    pool=MLLM.pool,  # a GPU only when the model is loaded in this step, not when a server answers
    op_tags=MLLM.op_tags,
    description="The multimodal LLM's output for every valid keyframe (a few images of one shot per "
    "request), kept verbatim with model id and prompt version; failed requests are losses, retried by the next run.",
)
def raw_mllm_json(
    context: dg.AssetExecutionContext,
    config: AnnotationConfig,
    catalog: CatalogResource,
    artifacts: ArtifactsResource,
    mllm: MllmResource,
) -> dg.MaterializeResult:
    db, store, drama_id = catalog.get(), artifacts.get(), context.partition_key
    inputs = {
        episode: [
            KeyframeInput(
                item=keyframe_item(episode, k.keyframe_index),
                shot_key=f"{episode}/{k.shot_index}",
                uri=k.uri,
                time_s=k.time_s,
            )
            for k in frames
        ]
        for episode, frames in queries.valid_keyframes(db, drama_id).items()
    }
    prompt_version, settings = load_prompt(FRAME_ANNOTATION).version, mllm.model_dump()

    def run(pending):
        backend = mllm.load()
        try:
            for episode_id, keyframes in pending:
                result = annotate_episode(
                    backend, episode_id, keyframes, max_images_per_request=mllm.max_images_per_request
                )
                store.write_bytes(
                    annotate.responses_jsonl(result.results), drama_id, "raw_mllm_json", episode_id, "responses.jsonl"
                )
                yield result
        finally:
            backend.close()

    def rows(result, prov):
        return [
            RawMllmOutput(
                drama_id=drama_id,
                episode_id=result.episode_id,
                request_index=i,
                items=list(r.items),
                text=r.text,
                prompt_version=r.prompt_version,
                seconds=round(r.seconds, 4),
                **prov.columns(),
            )
            for i, r in enumerate(result.results)
        ]

    report = run_episode_step(
        context,
        db,
        EpisodeStep(
            stage_version=version_of(annotate),
            inputs=inputs,
            run=run,
            rows=rows,
            tables=[RawMllmOutput],
            digest=lambda kfs: input_digest(settings, prompt_version, [(k.item, k.uri) for k in kfs]),
        ),
        redo=config.redo,
    )
    seconds, images = report.total("seconds"), report.total("images")
    return dg.MaterializeResult(
        metadata={
            "backend": mllm.backend,
            "prompt_version": prompt_version,
            **_episode_counts(report),
            "model_id": next((s["model_id"] for s in report.summaries.values() if s.get("model_id")), "(no requests)"),
            "valid_keyframes": report.given,
            "requests": report.total("requests"),
            "keyframes_lost": report.lost,
            "keyframes_to_retry": report.total("transient"),
            "loss_rate": _rate(report.lost, report.given),
            "images_per_s": round(images / seconds, 2) if seconds else 0.0,
            "loss_reasons": reasons_table(report.losses),
        }
    )


@dg.asset(
    partitions_def=dramas_partitions,
    deps=["raw_mllm_json"],
    group_name="annotation",
    kinds={"python", "json"},
    description="Every raw reply parsed (fences, prose, json-repair, optional LLM repair), normalised "
    "(numbers as strings, shot-type spellings) and validated as schema.FrameAnnotation, one row per keyframe.",
    check_specs=[
        drama_check(
            "frame_loss_rate",
            asset="cleaned_json",
            blocking=True,
            description="Valid keyframes without a recovered annotation, whatever the cause (failed "
            f"requests, garbage replies, unrecoverable JSON); blocks above {FRAME_LOSS_BLOCK_RATE:.0%}.",
        ),
        drama_check(
            "unparseable_rate",
            asset="cleaned_json",
            description=f"Replies that were not valid JSON as they came (warns above {UNPARSEABLE_WARN_RATE:.0%}).",
        ),
    ],
)
def cleaned_json(
    context: dg.AssetExecutionContext,
    config: AnnotationConfig,
    catalog: CatalogResource,
    artifacts: ArtifactsResource,
    mllm: MllmResource,
) -> dg.MaterializeResult:
    db, store, drama_id = catalog.get(), artifacts.get(), context.partition_key
    inputs = {
        episode: [RawReply(tuple(r.items), r.text) for r in raws]
        for episode, raws in queries.raw_outputs(db, drama_id).items()
    }
    valid = {
        keyframe_item(e, k.keyframe_index): k.time_s
        for e, kfs in queries.valid_keyframes(db, drama_id).items()
        for k in kfs
    }
    repair = {"base_url": mllm.repair_base_url, "model": mllm.repair_model}

    def run(pending):
        repairer = mllm.repairer()
        for result in each_episode(lambda e, replies: clean_episode(e, replies, timestamps=valid, repairer=repairer))(
            pending
        ):
            store.write_json(
                {f.item: f.annotation.model_dump(mode="json") for f in result.results},
                drama_id,
                "cleaned_json",
                result.episode_id,
                "frames.json",
            )
            yield result

    def rows(result, prov):
        return [
            FrameAnnotationRow(
                drama_id=drama_id,
                episode_id=result.episode_id,
                item=f.item,
                keyframe_index=int(f.item.rsplit("kf", 1)[-1]),
                outcome=f.outcome.value,
                annotation=f.annotation.model_dump(mode="json"),
                **prov.columns(),
            )
            for f in result.results
        ]

    report = run_episode_step(
        context,
        db,
        EpisodeStep(
            stage_version=version_of(clean_json),
            inputs=inputs,
            run=run,
            rows=rows,
            tables=[FrameAnnotationRow],
            model_id=mllm.repair_model,
            digest=lambda replies: input_digest(repair, [(r.items, r.text) for r in replies]),
        ),
        redo=config.redo,
    )
    return _cleaned_result(db, drama_id, report, given=len(valid))


def _cleaned_result(db, drama_id: str, report: StepReport, *, given: int) -> dg.MaterializeResult:
    """The frame loss rate counts every valid keyframe, including those whose request failed upstream."""
    kept, replies, unparseable = report.total("kept"), report.total("replies"), report.total("unparseable")
    frame_loss = (given - kept) / given if given else 0.0
    unparseable_rate = unparseable / replies if replies else 0.0
    lost = [loss for loss in queries.losses(db, drama_id) if loss.stage in ("raw_mllm_json", "cleaned_json")]
    why = _why(lost, given - kept, given) if frame_loss > FRAME_LOSS_BLOCK_RATE else None
    field_issues = Counter()
    for summary in report.summaries.values():
        field_issues.update(summary.get("field_issues", {}))
    outcomes = queries.annotation_outcomes(db, drama_id)
    return dg.MaterializeResult(
        metadata={
            **_episode_counts(report),
            "valid_keyframes": given,
            "replies": replies,
            "frames_kept": kept,
            "frames_lost": given - kept,
            "frame_loss_rate": round(frame_loss, 4),
            "unparseable_rate": round(unparseable_rate, 4),
            **{f"outcome_{k}": v for k, v in sorted(outcomes.items())},
            "field_issues": dg.MetadataValue.json(dict(field_issues.most_common(30))),
            "loss_reasons": reasons_table(lost),
        },
        check_results=[
            check(
                "frame_loss_rate",
                frame_loss <= FRAME_LOSS_BLOCK_RATE,
                severity="error",
                why=why,
                frame_loss_rate=round(frame_loss, 4),
                frames=given,
                lost=given - kept,
            ),
            check(
                "unparseable_rate",
                unparseable_rate <= UNPARSEABLE_WARN_RATE,
                replies=replies,
                unparseable_rate=round(unparseable_rate, 4),
            ),
        ],
    )


def _why(lost, count: int, given: int) -> str:
    """One line: how many keyframes were lost, and the commonest reason with an example."""
    reasons = Counter(loss.reason for loss in lost).most_common(3)
    example = next((loss.detail for loss in lost if reasons and loss.reason == reasons[0][0]), "")
    kinds = ", ".join(f"{reason} x{n}" for reason, n in reasons) or "no annotation recorded"
    return f"{count} of {given} keyframes lost ({kinds}){': ' + example[:160] if example else ''}"


def _episode_counts(report: StepReport) -> dict:
    return {"episodes_processed": report.processed, "episodes_skipped": report.skipped}


def _rate(lost: int, given: int) -> float:
    return round(lost / given, 4) if given else 0.0

"""raw_mllm_json and cleaned_json: the multimodal LLM's verbatim annotations of the valid
keyframes, and those annotations parsed, repaired and validated against schema.FrameAnnotation."""

import json
from collections import Counter

import dagster as dg
from sqlalchemy import select

from skyscript_assets.catalog import Episode, EpisodeProgress, FrameAnnotationRow, Keyframe, Loss, RawMllmOutput
from skyscript_assets.stages.annotation import annotate, clean_json
from skyscript_assets.stages.annotation.annotate import KeyframeInput, RawAnnotation, annotate_keyframes
from skyscript_assets.stages.annotation.clean_json import CleaningStats, clean_raw_output
from skyscript_assets.prompts import FRAME_ANNOTATION, load_prompt
from skyscript_assets.schema import FrameAnnotation
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.episode_steps import input_digest, pending_episodes, write_episode
from skyscript_assets.defs.platform.reporting import as_record, provenance, reasons_table
from skyscript_assets.defs.platform.resources import ArtifactStore, CatalogResource, MllmResource
from skyscript_assets.defs.video.assets import keyframes

FRAME_LOSS_BLOCK_RATE = 0.05  # the paper lost ~4 % of pre-extracted data overall
UNPARSEABLE_WARN_RATE = 0.08


def keyframe_item(episode_id: str, keyframe_index: int) -> str:
    """The id a keyframe goes by in annotation rows and losses."""
    return f"{episode_id}/kf{keyframe_index:04d}"


@dg.asset(
    partitions_def=dramas_partitions,
    deps=[keyframes],
    group_name="annotation",
    kinds={"python", "llm"},
    pool="gpu",
    description="The multimodal LLM's output for every valid keyframe (a few images of one shot per "
    "request), kept verbatim with model id and prompt version; failed requests are losses.",
)
def raw_mllm_json(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    artifacts: ArtifactStore,
    mllm: MllmResource,
) -> dg.MaterializeResult:
    drama_id = context.partition_key
    db = catalog.get()
    by_episode = _valid_keyframes(db, drama_id)
    prompt_version = load_prompt(FRAME_ANNOTATION).version
    settings = mllm.model_dump()
    hashes = {e: input_digest(settings, prompt_version, [(k.keyframe_index, k.uri) for k in kfs]) for e, kfs in by_episode.items()}
    asset_key = context.asset_key.to_user_string()
    todo = pending_episodes(db, asset_key=asset_key, partition=drama_id, stage_version=annotate.STAGE_VERSION,
                            input_hashes=hashes)
    context.log.info(f"{drama_id}: {len(todo)} of {len(by_episode)} episodes to annotate with the {mllm.backend} backend")
    backend = mllm.load() if todo else None
    model_id = getattr(backend, "model_id", "") if backend else ""
    prov = provenance(context, annotate.STAGE_VERSION, model_id)
    requests = images = failed = 0
    seconds = 0.0
    try:
        for number, episode_id in enumerate(todo, start=1):
            inputs = [KeyframeInput(item=keyframe_item(episode_id, k.keyframe_index), shot_key=f"{episode_id}/{k.shot_index}",
                                    uri=k.uri, time_s=k.time_s) for k in by_episode[episode_id]]
            results = annotate_keyframes(backend, inputs, max_images_per_request=mllm.max_images_per_request)
            raws = [r for r in results if isinstance(r, RawAnnotation)]
            losses = [r for r in results if not isinstance(r, RawAnnotation)]
            artifacts.write_bytes("".join(json.dumps({"items": list(r.items), "text": r.text, "model_id": r.model_id,
                                                      "prompt_version": r.prompt_version}, ensure_ascii=False) + "\n"
                                          for r in raws).encode(), drama_id, "raw_mllm_json", episode_id, "responses.jsonl")
            rows = [RawMllmOutput(drama_id=drama_id, episode_id=episode_id, request_index=i, items=list(r.items), text=r.text,
                                  prompt_version=r.prompt_version, seconds=round(r.seconds, 4), **prov)
                    for i, r in enumerate(raws)]
            write_episode(db, prov, episode_id, rows=rows, losses=losses, tables=[RawMllmOutput],
                          input_hash=hashes[episode_id], summary={"requests": len(raws), "lost": len(losses)})
            requests += len(raws)
            images += sum(len(r.items) for r in raws)
            failed += len(losses)
            seconds += sum(r.seconds for r in raws)
            context.log.info(f"[{number}/{len(todo)}] {episode_id}: {len(raws)} requests, {len(losses)} keyframes lost")
    finally:
        if backend is not None:
            backend.close()

    with db.session() as session:
        total_requests = len(session.scalars(select(RawMllmOutput.id).where(RawMllmOutput.partition == drama_id)).all())
        lost = list(session.scalars(select(Loss).where(Loss.partition == drama_id, Loss.asset_key == asset_key)))
    keyframe_count = sum(len(v) for v in by_episode.values())
    return dg.MaterializeResult(metadata={
        "backend": mllm.backend,
        "model_id": model_id or "(no new requests)",
        "prompt_version": prompt_version,
        "episodes_processed": len(todo),
        "episodes_skipped": len(by_episode) - len(todo),
        "valid_keyframes": keyframe_count,
        "requests": total_requests,
        "keyframes_lost": len(lost),
        "loss_rate": round(len(lost) / keyframe_count, 4) if keyframe_count else 0.0,
        "images_per_s": round(images / seconds, 2) if seconds else 0.0,
        "loss_reasons": reasons_table([as_record(loss) for loss in lost]),
    })


@dg.asset(
    partitions_def=dramas_partitions,
    deps=[raw_mllm_json],
    group_name="annotation",
    kinds={"python", "json"},
    description="Every raw reply parsed (fences, prose, json-repair, optional LLM repair), normalised "
    "(numbers as strings, shot-type spellings) and validated as schema.FrameAnnotation, one row per keyframe.",
    check_specs=[
        dg.AssetCheckSpec("frame_loss_rate", asset="cleaned_json", blocking=True,
                          description=f"Keyframes whose annotation could not be recovered (blocks above {FRAME_LOSS_BLOCK_RATE:.0%})."),
        dg.AssetCheckSpec("unparseable_rate", asset="cleaned_json",
                          description=f"Replies that were not valid JSON as they came (warns above {UNPARSEABLE_WARN_RATE:.0%})."),
    ],
)
def cleaned_json(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    artifacts: ArtifactStore,
    mllm: MllmResource,
) -> dg.MaterializeResult:
    drama_id = context.partition_key
    db = catalog.get()
    with db.session() as session:
        raws = list(session.scalars(select(RawMllmOutput).where(RawMllmOutput.partition == drama_id)
                                    .order_by(RawMllmOutput.episode_id, RawMllmOutput.request_index)))
    by_episode: dict[str, list[RawMllmOutput]] = {}
    for raw in raws:
        by_episode.setdefault(raw.episode_id, []).append(raw)
    times = {keyframe_item(e, k.keyframe_index): k.time_s for e, kfs in _valid_keyframes(db, drama_id).items() for k in kfs}
    repair = {"base_url": mllm.repair_base_url, "model": mllm.repair_model}
    hashes = {e: input_digest(repair, [r.text for r in rs]) for e, rs in by_episode.items()}
    asset_key = context.asset_key.to_user_string()
    todo = pending_episodes(db, asset_key=asset_key, partition=drama_id, stage_version=clean_json.STAGE_VERSION,
                            input_hashes=hashes)
    repairer = mllm.repairer() if todo else None
    prov = provenance(context, clean_json.STAGE_VERSION, mllm.repair_model)
    for episode_id in todo:
        stats = CleaningStats()
        rows, losses, frames_json = [], [], {}
        for raw in by_episode[episode_id]:
            result = clean_raw_output(raw.text, raw.items, timestamps=[times.get(i) for i in raw.items], repairer=repairer)
            stats.add(result)
            for item, frame in zip(raw.items, result.frames):
                if isinstance(frame, FrameAnnotation):
                    value = frame.model_dump(mode="json")
                    frames_json[item] = value
                    rows.append(FrameAnnotationRow(drama_id=drama_id, episode_id=episode_id, item=item,
                                                   keyframe_index=int(item.rsplit("kf", 1)[-1]), outcome=result.outcome.value,
                                                   annotation=value, **prov))
                else:
                    losses.append(frame)
        artifacts.write_json(frames_json, drama_id, "cleaned_json", episode_id, "frames.json")
        write_episode(db, prov, episode_id, rows=rows, losses=losses, tables=[FrameAnnotationRow],
                      input_hash=hashes[episode_id],
                      summary={"replies": sum(stats.replies.values()), "unparseable": stats.unparseable_replies,
                               "kept": stats.frames_kept, "lost": stats.frames_lost,
                               "field_issues": dict(stats.field_issues)})
        context.log.info(f"{episode_id}: {stats.frames_kept} frames kept, {stats.frames_lost} lost")

    with db.session() as session:
        summaries = [p.summary for p in session.scalars(select(EpisodeProgress).where(
            EpisodeProgress.partition == drama_id, EpisodeProgress.asset_key == asset_key))]
        lost = list(session.scalars(select(Loss).where(Loss.partition == drama_id, Loss.asset_key == asset_key)))
        outcomes = Counter(session.scalars(select(FrameAnnotationRow.outcome).where(FrameAnnotationRow.partition == drama_id)))
    kept = sum(s.get("kept", 0) for s in summaries)
    frames = kept + sum(s.get("lost", 0) for s in summaries)
    replies = sum(s.get("replies", 0) for s in summaries)
    unparseable = sum(s.get("unparseable", 0) for s in summaries)
    field_issues = Counter()
    for s in summaries:
        field_issues.update(s.get("field_issues", {}))
    frame_loss = (frames - kept) / frames if frames else 0.0
    unparseable_rate = unparseable / replies if replies else 0.0
    return dg.MaterializeResult(
        metadata={
            "episodes_processed": len(todo),
            "replies": replies,
            "frames_kept": kept,
            "frames_lost": frames - kept,
            "frame_loss_rate": round(frame_loss, 4),
            "unparseable_rate": round(unparseable_rate, 4),
            **{f"outcome_{k}": v for k, v in sorted(outcomes.items())},
            "field_issues": dg.MetadataValue.json(dict(field_issues.most_common(30))),
            "loss_reasons": reasons_table([as_record(loss) for loss in lost]),
        },
        check_results=[
            dg.AssetCheckResult(check_name="frame_loss_rate", passed=frame_loss <= FRAME_LOSS_BLOCK_RATE,
                                severity=dg.AssetCheckSeverity.ERROR,
                                metadata={"frame_loss_rate": round(frame_loss, 4), "frames": frames}),
            dg.AssetCheckResult(check_name="unparseable_rate", passed=unparseable_rate <= UNPARSEABLE_WARN_RATE,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"unparseable_rate": round(unparseable_rate, 4), "replies": replies}),
        ],
    )


def _valid_keyframes(db, drama_id: str) -> dict[str, list[Keyframe]]:
    """Valid keyframes per episode, in episode then keyframe order (every episode listed)."""
    with db.session() as session:
        episodes = list(session.scalars(select(Episode.episode_id).where(Episode.drama_id == drama_id).order_by(Episode.position)))
        frames = list(session.scalars(select(Keyframe).where(Keyframe.drama_id == drama_id, Keyframe.valid.is_(True))
                                      .order_by(Keyframe.episode_id, Keyframe.keyframe_index)))
    by_episode: dict[str, list[Keyframe]] = {e: [] for e in episodes}
    for frame in frames:
        by_episode.setdefault(frame.episode_id, []).append(frame)
    return by_episode

"""detections and character_refinements: the MLLM's objects grounded by open-vocabulary
detection (phantoms flagged), and its people checked against faces (DeepFace with
test-time augmentation), depth and posture; pixelated release copies; dialogue lines."""

import json
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import numpy as np
from sqlalchemy import select

from skyscript_assets.catalog import (
    CharacterObservation,
    Episode,
    EpisodeProgress,
    FrameAnnotationRow,
    Keyframe,
    ObjectDetection,
    ReleasedKeyframe,
    Shot,
)
from skyscript_assets.models.mllm import decode_rgb
from skyscript_assets.stages.annotation.annotate import read_image_bytes
from skyscript_assets.defs.annotation.assets import cleaned_json
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.episode_steps import input_digest, pending_episodes, write_episode
from skyscript_assets.defs.platform.reporting import provenance
from skyscript_assets.defs.platform.resources import ArtifactStore, CatalogResource, VisionModelsResource

STAGE_VERSION = "1"
REFINEMENT_VERSION = "2"  # character_refinements; 2: name captions next to faces
PHANTOM_WARN_RATE = 0.30


def _annotated_frames(db, drama_id: str) -> dict[str, list[tuple[FrameAnnotationRow, Keyframe]]]:
    """Cleaned annotations with their keyframes, per episode, in keyframe order."""
    with db.session() as session:
        rows = session.execute(select(FrameAnnotationRow, Keyframe).join(
            Keyframe, (Keyframe.drama_id == FrameAnnotationRow.drama_id) & (Keyframe.episode_id == FrameAnnotationRow.episode_id)
            & (Keyframe.keyframe_index == FrameAnnotationRow.keyframe_index))
            .where(FrameAnnotationRow.drama_id == drama_id).order_by(FrameAnnotationRow.episode_id, FrameAnnotationRow.keyframe_index)).all()
    grouped: dict[str, list] = {}
    for annotation, keyframe in rows:
        grouped.setdefault(annotation.episode_id, []).append((annotation, keyframe))
    return grouped


def _image(uri: str) -> np.ndarray:
    return np.asarray(decode_rgb(read_image_bytes(uri)))


def _summaries(db, drama_id: str, asset_key: str) -> list[dict]:
    with db.session() as session:
        return [p.summary for p in session.scalars(select(EpisodeProgress).where(
            EpisodeProgress.partition == drama_id, EpisodeProgress.asset_key == asset_key))]


@dg.asset(
    partitions_def=dramas_partitions,
    deps=[cleaned_json],
    group_name="refinement",
    kinds={"python", "pytorch"},
    pool="gpu",
    description="Each keyframe's MLLM objects grounded with Grounding DINO (the names are the text prompt); "
    "an object the detector cannot ground is kept and flagged as a phantom. Without weights: recorded as not run.",
    check_specs=[dg.AssetCheckSpec("phantom_rate", asset="detections",
                                   description=f"Share of MLLM objects no detector box supports (warns above {PHANTOM_WARN_RATE:.0%}).")],
)
def detections(context: dg.AssetExecutionContext, catalog: CatalogResource, vision: VisionModelsResource) -> dg.MaterializeResult:
    from skyscript_assets.models.base import WeightsMissing
    from skyscript_assets.stages.refinement.grounding import ground_frames

    drama_id = context.partition_key
    db = catalog.get()
    frames = _annotated_frames(db, drama_id)
    settings = {"path": vision.detector_path, "box": vision.box_threshold, "text": vision.text_threshold}
    hashes = {e: input_digest(settings, [a.annotation.get("objects") for a, _ in fs]) for e, fs in frames.items()}
    asset_key = context.asset_key.to_user_string()
    todo = pending_episodes(db, asset_key=asset_key, partition=drama_id, stage_version=STAGE_VERSION, input_hashes=hashes)
    detector, not_run = None, "not run: no detector weights configured (VisionModelsResource.detector_path)"
    if todo and vision.detector_path:
        from skyscript_assets.models.detector import OpenVocabularyDetector

        try:
            detector = OpenVocabularyDetector.load(vision.detector_path, vision.device, box_threshold=vision.box_threshold,
                                                   text_threshold=vision.text_threshold)
            not_run = None
        except WeightsMissing as exc:
            not_run = str(exc)
    if not_run and todo:
        context.log.warning(f"detections: {not_run}")
    prov = provenance(context, STAGE_VERSION, getattr(detector, "model_id", "") if detector else "")
    for episode_id in todo:
        inputs = []
        for annotation, keyframe in frames[episode_id]:
            names = [o.get("name") for o in annotation.annotation.get("objects", []) if o.get("name")]
            image = _image(keyframe.uri) if detector is not None and names else np.zeros((1, 1, 3), np.uint8)
            inputs.append((annotation.item, image, names))
        grounded, losses = ground_frames(detector, [i for i in inputs if i[2]], not_run_reason=not_run)
        rows = [ObjectDetection(drama_id=drama_id, episode_id=episode_id, item=g.item, name=o.name,
                                box=list(o.box) if o.box else None, score=o.score, phantom=o.phantom, status=g.status, **prov)
                for g in grounded for o in g.objects]
        checked = [r for r in rows if r.phantom is not None]
        write_episode(db, prov, episode_id, rows=rows, losses=losses,
                      tables=[ObjectDetection], input_hash=hashes[episode_id],
                      summary={"objects": len(rows), "checked": len(checked), "phantoms": sum(1 for r in checked if r.phantom),
                        "status": "ok" if detector else not_run})
    summaries = _summaries(db, drama_id, asset_key)
    objects = sum(s.get("objects", 0) for s in summaries)
    checked = sum(s.get("checked", 0) for s in summaries)
    phantoms = sum(s.get("phantoms", 0) for s in summaries)
    rate = phantoms / checked if checked else None
    status = "ok" if checked or not objects else next((s["status"] for s in summaries if s.get("status") != "ok"), "not run")
    return dg.MaterializeResult(
        metadata={"objects": objects, "objects_checked": checked, "phantoms": phantoms,
                  "phantom_rate": round(rate, 4) if rate is not None else "not run", "detector": status},
        check_results=[dg.AssetCheckResult(
            check_name="phantom_rate", passed=rate is None or rate <= PHANTOM_WARN_RATE, severity=dg.AssetCheckSeverity.WARN,
            description=None if rate is not None else status, metadata={"phantoms": phantoms, "checked": checked})],
    )


@dg.asset(
    partitions_def=dramas_partitions,
    deps=[detections],
    group_name="refinement",
    kinds={"python", "pytorch"},
    pool="gpu",
    description="The MLLM's people matched to detected faces; on conflict, test-time augmentation and DeepFace wins; "
    "depth and posture where their models are configured; dialogue lines from subtitles and OCR fill empty lines; "
    "a pixelated release copy of every keyframe (faces and on-screen text mosaicked).",
    check_specs=[
        dg.AssetCheckSpec("no_face_after_pixelation", asset="character_refinements", blocking=True,
                          description="The face detector finds no face in any released keyframe."),
        dg.AssetCheckSpec("face_conflict_rate", asset="character_refinements",
                          description="Share of matched people where DeepFace and the MLLM disagreed."),
    ],
)
def character_refinements(context: dg.AssetExecutionContext, catalog: CatalogResource, artifacts: ArtifactStore,
                          vision: VisionModelsResource) -> dg.MaterializeResult:
    import cv2

    from skyscript_assets.models.ocr import TextReader
    from skyscript_assets.stages.refinement.characters import RefinementModels, refine_frames
    from skyscript_assets.stages.refinement.dialogue import episode_lines, fill_missing_lines, pick_speaker
    from skyscript_assets.stages.scripts.identities import name_caption
    from skyscript_assets.stages.refinement.pixelation import faces_left, privacy_face_detector, release_keyframe

    drama_id = context.partition_key
    db = catalog.get()
    frames = _annotated_frames(db, drama_id)
    settings = vision.model_dump()
    hashes = {e: input_digest(settings, [(a.item, a.annotation.get("people")) for a, _ in fs]) for e, fs in frames.items()}
    asset_key = context.asset_key.to_user_string()
    todo = pending_episodes(db, asset_key=asset_key, partition=drama_id, stage_version=REFINEMENT_VERSION, input_hashes=hashes)
    prov = provenance(context, REFINEMENT_VERSION, "deepface+haar")
    if todo:
        models = RefinementModels.load(deepface_home=vision.deepface_home or None, depth_model=vision.depth_path or None,
                                       pose_model=vision.pose_path or None, device=vision.device)
        for step, why in models.not_run.items():
            context.log.warning(f"character_refinements: {step} {why}")
        reader, privacy = TextReader.load(), privacy_face_detector()
        with db.session() as session:
            episodes = {e.episode_id: e for e in session.scalars(select(Episode).where(Episode.drama_id == drama_id))}
            shots = {(s.episode_id, s.shot_index): s for s in session.scalars(select(Shot).where(Shot.drama_id == drama_id))}
    for episode_id in todo:
        pairs = frames[episode_id]
        images = {a.item: _image(k.uri) for a, k in pairs}
        people = {a.item: list(a.annotation.get("people") or []) for a, _ in pairs}
        refined, losses = refine_frames(models, [(a.item, images[a.item], people[a.item]) for a, _ in pairs])
        # Dialogue from subtitle streams, .srt sidecars and OCR of the bottom band, per shot.
        episode_shots = sorted({(k.shot_index, shots[(episode_id, k.shot_index)].start_s, shots[(episode_id, k.shot_index)].end_s)
                                for _, k in pairs if (episode_id, k.shot_index) in shots})
        video = Path(episodes[episode_id].uri)
        lines, line_losses = (episode_lines(video, episode_shots, reader, [(k.time_s, images[a.item]) for a, k in pairs])
                              if video.is_file() else ({}, []))
        rows, released_rows, released_images = [], [], {}
        for (annotation, keyframe), frame in zip(pairs, refined):
            texts = reader.read([images[annotation.item]])[0]
            height = images[annotation.item].shape[0]
            areas = [(c.face_box[2] - c.face_box[0]) * (c.face_box[3] - c.face_box[1]) if c.face_box else None
                     for c in frame.characters]
            filled, _ = fill_missing_lines(people[annotation.item], lines.get(keyframe.shot_index, []),
                                           pick_speaker(people[annotation.item], areas))
            for character in frame.characters:
                data = asdict(character)
                data["line"] = filled[character.person_index].get("line") if character.person_index < len(filled) else None
                data["caption"] = (name_caption([(t.text, t.box) for t in texts], character.face_box, height)
                                   if character.face_box else None)
                rows.append(CharacterObservation(drama_id=drama_id, episode_id=episode_id, item=annotation.item,
                                                 person_index=character.person_index, refinement=json.loads(json.dumps(data, default=str)), **prov))
            text_boxes = [t.box for t in texts]
            face_boxes = [tuple(c.face_box) for c in frame.characters if c.face_box]
            released, _ = release_keyframe(privacy, images[annotation.item], text_boxes=text_boxes, face_boxes=face_boxes)
            released_images[annotation.item] = released
            jpeg = cv2.imencode(".jpg", cv2.cvtColor(released, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            uri = artifacts.write_bytes(jpeg, drama_id, "released_keyframes", episode_id, f"kf{keyframe.keyframe_index:04d}.jpg")
            released_rows.append(ReleasedKeyframe(drama_id=drama_id, episode_id=episode_id, item=annotation.item, uri=uri,
                                                  faces_left=0, **prov))
        leaks = faces_left(privacy, released_images, stage="character_refinements")
        leaked = {loss.item for loss in leaks}
        for row in released_rows:
            row.faces_left = int(row.item in leaked)
        conflicts = sum(f.conflict_count for f in refined)
        matched = sum(1 for f in refined for c in f.characters if c.face_box)
        write_episode(db, prov, episode_id, rows=[*rows, *released_rows], losses=[*losses, *line_losses, *leaks],
                      tables=[CharacterObservation, ReleasedKeyframe], input_hash=hashes[episode_id],
                      summary={"people": len(rows), "matched": matched, "conflicts": conflicts, "released": len(released_rows),
                        "faces_left": len(leaked), "lines_filled": sum(1 for r in rows if r.refinement.get("line")),
                        "not_run": models.not_run})
        context.log.info(f"{episode_id}: {len(rows)} people, {matched} matched to faces, {conflicts} conflicts, "
                         f"{len(released_rows)} keyframes released, {len(leaked)} with a face left")
    summaries = _summaries(db, drama_id, asset_key)
    total = {k: sum(s.get(k, 0) for s in summaries) for k in ("people", "matched", "conflicts", "released", "faces_left", "lines_filled")}
    conflict_rate = total["conflicts"] / total["matched"] if total["matched"] else 0.0
    not_run = next((s.get("not_run") for s in summaries if s.get("not_run")), {})
    return dg.MaterializeResult(
        metadata={**total, "face_conflict_rate": round(conflict_rate, 4),
                  "not_run": dg.MetadataValue.json(not_run or {})},
        check_results=[
            dg.AssetCheckResult(check_name="no_face_after_pixelation", passed=total["faces_left"] == 0,
                                severity=dg.AssetCheckSeverity.ERROR, metadata={"faces_left": total["faces_left"]}),
            dg.AssetCheckResult(check_name="face_conflict_rate", passed=True, severity=dg.AssetCheckSeverity.WARN,
                                metadata={"face_conflict_rate": round(conflict_rate, 4), "conflicts": total["conflicts"]}),
        ],
    )

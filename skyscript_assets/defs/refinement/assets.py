"""detections and character_refinements: the MLLM's objects grounded by open-vocabulary
detection (phantoms flagged), and its people checked against faces (DeepFace with
test-time augmentation), depth and posture; pixelated release copies; dialogue lines."""

import dagster as dg

from skyscript_assets.catalog import CharacterObservation, ObjectDetection, ReleasedKeyframe, queries
from skyscript_assets.defs.annotation.assets import AnnotationConfig
from skyscript_assets.defs.platform.episode_steps import EpisodeStep, each_episode, input_digest, run_episode_step
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.reporting import check, drama_check, reasons_table
from skyscript_assets.defs.platform.resources import ArtifactsResource, CatalogResource, VisionModelsResource
from skyscript_assets.stages.refinement import episode as refinement_stage
from skyscript_assets.stages.refinement import grounding as grounding_stage
from skyscript_assets.stages.refinement.episode import RefinementTools, refine_episode
from skyscript_assets.stages.refinement.grounding import ground_episode
from skyscript_assets.stages.refinement.inputs import AnnotatedKeyframe
from skyscript_assets.stages.step import version_of


class DetectionsConfig(AnnotationConfig):
    phantom_warn_rate: float = 0.30  # share of the MLLM's objects no detector box supports


class RefinementsConfig(AnnotationConfig):
    conflict_warn_rate: float = 0.30  # share of face-matched people on which DeepFace and the MLLM disagree


def annotated_keyframes(db, drama_id: str) -> dict[str, list[AnnotatedKeyframe]]:
    return {
        episode: [
            AnnotatedKeyframe(
                a.item,
                k.keyframe_index,
                k.shot_index,
                k.time_s,
                k.uri,
                list(a.annotation.get("people") or []),
                [o.get("name") for o in a.annotation.get("objects") or [] if o.get("name")],
            )
            for a, k in pairs
        ]
        for episode, pairs in queries.annotated_frames(db, drama_id).items()
    }


@dg.asset(
    partitions_def=dramas_partitions,
    deps=["cleaned_json"],
    group_name="refinement",
    kinds={"python", "pytorch"},
    pool="gpu",
    description="Each keyframe's MLLM objects grounded with Grounding DINO (the names are the text prompt); "
    "an object the detector cannot ground is kept and flagged as a phantom. Without weights: recorded as not run.",
    check_specs=[
        drama_check(
            "phantom_rate",
            asset="detections",
            description="Share of MLLM objects no detector box supports (warns above "
            "the run config's phantom_warn_rate, 30 % by default).",
        )
    ],
)
def detections(
    context: dg.AssetExecutionContext, config: DetectionsConfig, catalog: CatalogResource, vision: VisionModelsResource
) -> dg.MaterializeResult:
    db, drama_id = catalog.get(), context.partition_key
    settings = {"path": vision.detector_path, "box": vision.box_threshold, "text": vision.text_threshold}

    def run(pending):
        detector, not_run = vision.load_detector()
        yield from each_episode(lambda e, frames: ground_episode(detector, e, frames, not_run=not_run))(pending)

    def rows(result, prov):
        return [
            ObjectDetection(
                drama_id=drama_id,
                episode_id=result.episode_id,
                item=g.item,
                name=o.name,
                box=list(o.box) if o.box else None,
                score=o.score,
                phantom=o.phantom,
                status=g.status,
                **prov.columns(),
            )
            for g in result.results
            for o in g.objects
        ]

    report = run_episode_step(
        context,
        db,
        EpisodeStep(
            stage_version=version_of(grounding_stage),
            inputs=annotated_keyframes(db, drama_id),
            run=run,
            rows=rows,
            tables=[ObjectDetection],
            digest=lambda frames: input_digest(settings, [f.object_names for f in frames]),
        ),
        redo=config.redo,
    )
    checked, phantoms = report.total("checked"), report.total("phantoms")
    rate = phantoms / checked if checked else None
    return dg.MaterializeResult(
        metadata={
            "objects": report.total("objects"),
            "objects_checked": checked,
            "phantoms": phantoms,
            "phantom_rate": round(rate, 4) if rate is not None else "not run",
            "detector": report.not_run or "ok",
            "phantom_flags": reasons_table(report.flags),
        },
        check_results=[
            check(
                "phantom_rate",
                rate is None or rate <= config.phantom_warn_rate,
                why=report.not_run
                or (
                    f"{phantoms} of {checked} objects are phantoms"
                    if rate is not None and rate > config.phantom_warn_rate
                    else None
                ),
                phantoms=phantoms,
                checked=checked,
                threshold=config.phantom_warn_rate,
            )
        ],
    )


@dg.asset(
    partitions_def=dramas_partitions,
    deps=["detections"],
    group_name="refinement",
    kinds={"python", "pytorch"},
    pool="gpu",
    description="The MLLM's people matched to detected faces; on conflict, test-time augmentation and DeepFace wins; "
    "depth and posture where their models are configured; dialogue lines from subtitles and OCR fill empty lines; "
    "a pixelated release copy of every keyframe (faces and on-screen text mosaicked), checked by a second detector.",
    check_specs=[
        drama_check(
            "no_face_after_pixelation",
            asset="character_refinements",
            blocking=True,
            description="A face detector of another family than the pixelation's finds no face in any "
            "released keyframe; a face found blocks the drama's release and names the keyframe.",
        ),
        drama_check(
            "face_conflict_rate",
            asset="character_refinements",
            description="Share of matched people where DeepFace and the MLLM disagreed (warns above "
            "the run config's conflict_warn_rate, 30 % by default).",
        ),
    ],
)
def character_refinements(
    context: dg.AssetExecutionContext,
    config: RefinementsConfig,
    catalog: CatalogResource,
    artifacts: ArtifactsResource,
    vision: VisionModelsResource,
) -> dg.MaterializeResult:
    db, store, drama_id = catalog.get(), artifacts.get(), context.partition_key
    videos = {e.episode_id: e.uri for e in queries.episodes(db, drama_id)}
    shots = {(s.episode_id, s.shot_index): (s.start_s, s.end_s) for s in queries.shots(db, drama_id)}
    settings = vision.model_dump()

    def run(pending):
        tools = RefinementTools.load(
            deepface_home=vision.deepface_home or None,
            depth_model=vision.depth_path or None,
            pose_model=vision.pose_path or None,
            device=vision.device,
        )
        for step, why in tools.models.not_run.items():
            context.log.warning(f"character_refinements: {step} {why}")
        for episode_id, frames in pending:
            yield refine_episode(
                tools,
                episode_id,
                frames,
                video_uri=videos[episode_id],
                shots={i: span for (e, i), span in shots.items() if e == episode_id},
            )

    def rows(result, prov):
        return [
            row
            for k in result.results
            for row in (
                *(
                    CharacterObservation(
                        drama_id=drama_id,
                        episode_id=result.episode_id,
                        item=k.item,
                        person_index=i,
                        refinement=person,
                        **prov.columns(),
                    )
                    for i, person in enumerate(k.people)
                ),
                ReleasedKeyframe(
                    drama_id=drama_id,
                    episode_id=result.episode_id,
                    item=k.item,
                    faces_left=k.faces_left,
                    uri=store.write_bytes(
                        k.released_jpeg,
                        drama_id,
                        "released_keyframes",
                        result.episode_id,
                        f"kf{k.keyframe_index:04d}.jpg",
                    ),
                    **prov.columns(),
                ),
            )
        ]

    report = run_episode_step(
        context,
        db,
        EpisodeStep(
            stage_version=version_of(refinement_stage),
            inputs=annotated_keyframes(db, drama_id),
            run=run,
            rows=rows,
            tables=[CharacterObservation, ReleasedKeyframe],
            model_id="deepface+centerface/blazeface",
            digest=lambda frames: input_digest(settings, [(f.item, f.people) for f in frames]),
        ),
        redo=config.redo,
    )
    return _refinement_result(report, config)


def _refinement_result(report, config: RefinementsConfig) -> dg.MaterializeResult:
    total = {
        k: report.total(k)
        for k in ("people", "matched", "conflicts", "released", "faces_left", "lines_filled", "lines_guessed")
    }
    conflict_rate = total["conflicts"] / total["matched"] if total["matched"] else 0.0
    leaks = [loss for loss in report.losses if loss.reason == "face_visible_after_pixelation"]
    not_run = next((s["models_not_run"] for s in report.summaries.values() if s.get("models_not_run")), {})
    return dg.MaterializeResult(
        metadata={
            **total,
            "face_conflict_rate": round(conflict_rate, 4),
            "not_run": dg.MetadataValue.json(not_run),
            "flags": reasons_table(report.flags),
            "loss_reasons": reasons_table(report.losses),
        },
        check_results=[
            check(
                "no_face_after_pixelation",
                not leaks,
                severity="error",
                faces_left=total["faces_left"],
                why=f"a face is still visible in {', '.join(sorted({leak.item for leak in leaks})[:10])}"
                if leaks
                else None,
            ),
            check(
                "face_conflict_rate",
                conflict_rate <= config.conflict_warn_rate,
                conflicts=total["conflicts"],
                face_conflict_rate=round(conflict_rate, 4),
                threshold=config.conflict_warn_rate,
                why=f"{total['conflicts']} of {total['matched']} matched people disagree"
                if conflict_rate > config.conflict_warn_rate
                else None,
            ),
        ],
    )

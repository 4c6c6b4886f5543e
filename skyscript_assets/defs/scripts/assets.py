"""calibrated_shooting_scripts: scenes and shots assembled from every earlier stage, with
character identities across the drama, highlight scores, camera angles, events, 3D positions
registered across each scene's shots, Table 1 text, and the calibration packets whose human
review gates the release."""

import base64
import json
from collections import Counter, defaultdict
from pathlib import Path

import dagster as dg
import numpy as np
from sqlalchemy import select

from skyscript_assets.catalog import (
    CharacterObservation,
    CharacterRow,
    Episode,
    FrameAnnotationRow,
    Keyframe,
    ObjectDetection,
    Shot,
    ShootingScriptRow,
)
from skyscript_assets.models.base import WeightsMissing
from skyscript_assets.models.faces import FaceEmbedder
from skyscript_assets.models.mllm import decode_rgb
from skyscript_assets.stages.annotation.annotate import read_image_bytes
from skyscript_assets.stages.scripts.audio import analyse_range, decode_mono
from skyscript_assets.stages.scripts.calibration import (
    RecordReview,
    grade_packet,
    label_config,
    label_studio_task,
    load_reviews,
    make_packets,
    shot_fields,
)
from skyscript_assets.stages.scripts.highlight import plot_highlight_curve
from skyscript_assets.stages.ingest.landing import open_fs
from skyscript_assets.stages.scripts.shooting_scripts import (
    KeyframeEvidence,
    ShotEvidence,
    assemble_episode,
    character_library,
    identities_for_drama,
    sample_shot_frames,
    scene_view_png,
)
from skyscript_assets.stages.scripts.table1 import shooting_script_text
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.reporting import provenance
from skyscript_assets.defs.platform.resources import ArtifactStore, CatalogResource, LandingZone, VisionModelsResource
from skyscript_assets.defs.refinement.assets import character_refinements

STAGE_VERSION = "2"  # 2: camera angle, events, reconciled shot size, registered layout
# Reviewers' Label Studio exports (or the short {record_id: true|false} form), in the drama's
# landing folder: this file and/or any *.json under calibration/.
REVIEWS_FILE = "calibration_reviews.json"
REVIEWS_FOLDER = "calibration"


@dg.asset(
    partitions_def=dramas_partitions,
    deps=[character_refinements],
    group_name="scripts",
    kinds={"python", "json"},
    description="One shooting script per scene (schema.ShootingScript and its Table 1 text): scenes grouped by "
    "continuity, character identities across episodes, camera angle and movement, shot size reconciled with the "
    "faces, events, highlight score, 3D locations registered across each scene's shots with a projection matrix "
    "per shot; "
    "calibration packets of 200-500 shots for human review, graded against the 90 % gate.",
    check_specs=[dg.AssetCheckSpec("calibration_gate", asset="calibrated_shooting_scripts", blocking=True,
                                   description="Every calibration packet reviewed and at least 90 % accurate; a packet "
                                   "below 90 % blocks the release of the drama.")],
)
def calibrated_shooting_scripts(context: dg.AssetExecutionContext, catalog: CatalogResource, artifacts: ArtifactStore,
                                landing: LandingZone, vision: VisionModelsResource) -> dg.MaterializeResult:
    drama_id = context.partition_key
    db = catalog.get()
    prov = provenance(context, STAGE_VERSION)
    with db.session() as session:
        episodes = list(session.scalars(select(Episode).where(Episode.drama_id == drama_id).order_by(Episode.position)))
        shots = list(session.scalars(select(Shot).where(Shot.drama_id == drama_id).order_by(Shot.episode_id, Shot.shot_index)))
        keyframes = {(k.episode_id, k.keyframe_index): k for k in session.scalars(
            select(Keyframe).where(Keyframe.drama_id == drama_id, Keyframe.valid.is_(True)))}
        annotations = list(session.scalars(select(FrameAnnotationRow).where(FrameAnnotationRow.drama_id == drama_id)))
        people = defaultdict(list)
        for row in session.scalars(select(CharacterObservation).where(CharacterObservation.drama_id == drama_id)
                                   .order_by(CharacterObservation.person_index)):
            people[row.item].append(row.refinement)
        objects = defaultdict(list)
        for row in session.scalars(select(ObjectDetection).where(ObjectDetection.drama_id == drama_id)):
            objects[row.item].append({"name": row.name, "box": row.box, "phantom": row.phantom})

    images = {a.item: np.asarray(decode_rgb(read_image_bytes(keyframes[(a.episode_id, a.keyframe_index)].uri)))
              for a in annotations if (a.episode_id, a.keyframe_index) in keyframes}
    position = {e.episode_id: e.position for e in episodes}
    faces = [(a.item, i, images[a.item], tuple(p["face_box"]), p.get("line"),
              (position.get(a.episode_id, 0), keyframes[(a.episode_id, a.keyframe_index)].time_s), p.get("caption"))
             for a in annotations if a.item in images for i, p in enumerate(people.get(a.item, [])) if p.get("face_box")]
    try:  # DeepFace's ArcFace embeddings where its weights are; the shipped HOG fallback otherwise
        embedder, embeddings_note = FaceEmbedder.load(vision.deepface_home or None), None
    except WeightsMissing as exc:
        embedder, embeddings_note = None, str(exc)
    identities = identities_for_drama(faces, embedder)
    identity_of = identities.identity_of
    episode_of = {a.item: a.episode_id for a in annotations}
    library = []
    for entry in character_library(identities):
        uri = artifacts.write_bytes(entry.face_jpeg, drama_id, "calibrated_shooting_scripts", "characters", f"{entry.character_id}.jpg")
        library.append(CharacterRow(drama_id=drama_id, character_id=entry.character_id, name=entry.name, named_from=entry.named_from,
                                    observations=entry.observations, first_episode_id=episode_of[entry.first_item],
                                    first_time_s=entry.first_time_s, face_uri=uri, embedding_kind=identities.embedding_kind, **prov))

    by_shot = defaultdict(list)
    for a in annotations:
        if a.item in images:
            k = keyframes[(a.episode_id, a.keyframe_index)]
            by_shot[(a.episode_id, k.shot_index)].append(
                KeyframeEvidence(a.item, images[a.item], a.annotation, people.get(a.item, []), objects.get(a.item, [])))
    uri_of = {a.item: keyframes[(a.episode_id, a.keyframe_index)].uri for a in annotations if a.item in images}
    rows, curves, records = [], {}, {}  # records: record id -> (episode, fields, keyframe uri, context)
    figures, view = Counter(), None
    for episode in episodes:
        episode_shots = [s for s in shots if s.episode_id == episode.episode_id]
        if not episode_shots:
            continue
        local = Path(episode.uri).is_file()
        frames = sample_shot_frames(episode.uri, [(s.shot_index, s.start_s, s.end_s) for s in episode_shots]) if local else {}
        audio = decode_mono(episode.uri) if local and episode.has_audio else None
        evidence = [ShotEvidence(s.shot_index, s.start_s, s.end_s, by_shot.get((episode.episode_id, s.shot_index), []),
                                 frames.get(s.shot_index, []), audio=analyse_range(audio, s.start_s, s.end_s) if audio is not None else None)
                    for s in episode_shots]
        scripts = assemble_episode(drama_id, episode.episode_id, evidence, identity_of, figures)
        first_keyframe = {round(e.start_s, 3): uri_of.get(e.keyframes[0].item) for e in evidence if e.keyframes}
        view = view or next((png for png in map(scene_view_png, scripts) if png), None)
        for script in scripts:
            text = shooting_script_text(script)
            value = script.model_dump(mode="json")
            artifacts.write_json(value, drama_id, "calibrated_shooting_scripts", episode.episode_id, f"scene-{script.scene_number:04d}.json")
            artifacts.write_bytes(text.encode(), drama_id, "calibrated_shooting_scripts", episode.episode_id, f"scene-{script.scene_number:04d}.txt")
            rows.append(ShootingScriptRow(drama_id=drama_id, episode_id=episode.episode_id, scene_number=script.scene_number,
                                          shots=len(script.shots), script=value, text=text, calibration_status="pending", **prov))
            for shot in script.shots:
                records[f"{script.script_id}/shot-{shot.shot_number:03d}"] = (
                    episode.episode_id, shot_fields(shot), first_keyframe.get(round(shot.start_s, 3)), text)
        curves[episode.episode_id] = [shot.highlight_score or 0.0 for script in scripts for shot in script.shots]

    packets = make_packets(list(records), drama_id=drama_id) if records else []
    predictions = {record_id: fields for record_id, (_, fields, _, _) in records.items()}
    reviews = _reviews(landing, drama_id, predictions)
    grades = [grade_packet(p, reviews) for p in packets]
    status = ("passed" if grades and all(g.status == "passed" for g in grades)
              else "needs_repair" if any(g.status == "needs_repair" for g in grades) else "pending")
    to_repair = sorted({records[r][0] for p, g in zip(packets, grades) if g.status == "needs_repair" for r in p.record_ids})
    for row in rows:
        row.calibration_status = status
    for packet in packets:  # the Label Studio tasks of each packet, to import into a project
        tasks = [label_studio_task(r, _image_url(artifacts, records[r][2]), records[r][1], records[r][3], prov["asset_key"] + "/" + STAGE_VERSION)
                 for r in packet.record_ids]
        artifacts.write_json(tasks, drama_id, "calibrated_shooting_scripts", "calibration", f"{packet.packet_id}.tasks.json")
    artifacts.write_bytes(label_config().encode(), drama_id, "calibrated_shooting_scripts", "calibration", "label_config.xml")
    artifacts.write_json({"packets": [{"packet_id": p.packet_id, "record_ids": p.record_ids, "status": g.status,
                                       "accuracy": g.accuracy} for p, g in zip(packets, grades)],
                          "grades": [g.__dict__ for g in grades], "episodes_to_repair": to_repair,
                          "reviews": f"<landing>/{drama_id}/{REVIEWS_FILE} or <landing>/{drama_id}/{REVIEWS_FOLDER}/*.json"},
                         drama_id, "calibrated_shooting_scripts", "calibration", "packets.json")
    db.replace_partition_rows(asset_key=prov["asset_key"], partition=drama_id, rows=[*rows, *library],
                              tables=[ShootingScriptRow, CharacterRow])
    names = sorted({name for _, name in identity_of.values()})
    return dg.MaterializeResult(
        metadata={
            "shooting_scripts": len(rows),
            "shots": sum(r.shots for r in rows),
            "characters": len({cid for cid, _ in identity_of.values()}),
            "character_names": ", ".join(names[:20]) or "-",
            "character_library": dg.MetadataValue.md(_library_markdown(library)),
            "identity_embeddings": "deepface ArcFace" if embedder else f"hog ({embeddings_note})",
            "camera_angle_coverage": round(figures["shots_with_camera_angle"] / figures["shots"], 3) if figures["shots"] else 0.0,
            "events": figures["events"],
            "shot_size_measured": figures["shot_size_measured"],
            "shot_size_disagreements": figures["shot_size_disagreements"],
            "occlusion_conflicts": figures["occlusion_conflicts"],
            "occlusion_conflicts_unresolved": figures["occlusion_conflicts_unresolved"],
            "shots_registered": figures["shots_registered"],
            "shots_unregistered": figures["shots_unregistered"],
            "virtual_view": dg.MetadataValue.md(
                f"![characters of a scene from a virtual camera](data:image/png;base64,{base64.b64encode(view).decode()})"
                if view else "Nobody placed in 3D."),
            "calibration_packets": len(packets),
            "calibration_status": status,
            **({"calibration_accuracy": min(g.accuracy for g in grades)} if grades and all(g.accuracy is not None for g in grades) else {}),
            "calibration_tasks": dg.MetadataValue.path(artifacts.path(drama_id, "calibrated_shooting_scripts", "calibration")),
            "episodes_to_repair": ", ".join(to_repair) or "-",
            "highlight_curves": dg.MetadataValue.md(_curves_markdown(curves)),
            "example": dg.MetadataValue.md("```\n" + (rows[0].text if rows else "") + "```"),
        },
        check_results=[dg.AssetCheckResult(
            check_name="calibration_gate", passed=status == "passed",
            severity=dg.AssetCheckSeverity.ERROR if status == "needs_repair" else dg.AssetCheckSeverity.WARN,
            description={"pending": f"awaiting review: import calibration/*.tasks.json into Label Studio and put its JSON "
                                    f"export in the drama's landing folder ({REVIEWS_FOLDER}/ or {REVIEWS_FILE})",
                         "needs_repair": f"a packet is below 90 % accuracy: repair episodes {', '.join(to_repair)}, "
                                         "re-run them and review again"}.get(status),
            metadata={"packets": len(packets), **{g.packet_id: g.accuracy if g.accuracy is not None else "pending" for g in grades[:20]}})],
    )


def _reviews(landing: LandingZone, drama_id: str, predictions: dict) -> dict[str, RecordReview]:
    """Every review file of the drama, later files overriding earlier ones record by record."""
    fs, root = open_fs(landing.resolved_url())
    paths = [f"{root}/{drama_id}/{REVIEWS_FILE}", *sorted(fs.glob(f"{root}/{drama_id}/{REVIEWS_FOLDER}/*.json"))]
    reviews: dict[str, RecordReview] = {}
    for path in paths:
        if not fs.exists(path):
            continue
        try:
            with fs.open(path, "rb") as f:
                reviews.update(load_reviews(f.read().decode("utf-8"), predictions))
        except (ValueError, KeyError, TypeError, AttributeError, json.JSONDecodeError):
            continue  # an unreadable review file counts as not reviewed yet
    return reviews


def _image_url(artifacts: ArtifactStore, uri: str | None) -> str | None:
    """Where Label Studio finds the keyframe: its local-files route under the artifact root
    (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT = the artifact root), or the object-store URI."""
    if not uri:
        return None
    root = artifacts.resolved_root()
    if "://" not in root and uri.startswith(root.rstrip("/") + "/"):
        return f"/data/local-files/?d={uri[len(root.rstrip('/')) + 1:]}"
    return uri


def _library_markdown(library: list[CharacterRow]) -> str:
    lines = ["| id | name | named from | faces | first seen |", "|---|---|---|---:|---|"]
    lines += [f"| {c.character_id} | {c.name} | {c.named_from} | {c.observations} | {c.first_episode_id} {c.first_time_s:.1f}s |"
              for c in library[:50]]
    return "\n".join(lines) if library else "No faces, no characters."


def _curves_markdown(curves: dict[str, list[float]]) -> str:
    parts = []
    for episode_id, scores in list(curves.items())[:5]:
        png = base64.b64encode(plot_highlight_curve(scores)).decode()
        parts.append(f"**{episode_id}**\n\n![highlight curve of {episode_id}](data:image/png;base64,{png})")
    return "\n\n".join(parts) or "No shots."

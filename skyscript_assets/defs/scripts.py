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

from ..catalog import (CharacterObservation, Episode, FrameAnnotationRow, Keyframe, ObjectDetection, Shot,
                       ShootingScriptRow)
from ..models.mllm import decode_rgb
from ..stages.annotate import read_image_bytes
from ..stages.audio import analyse_range, decode_mono
from ..stages.calibration import grade_packet, load_reviews, make_packets
from ..stages.highlight import plot_highlight_curve
from ..stages.landing import open_fs
from ..stages.shooting_scripts import (KeyframeEvidence, ShotEvidence, assemble_episode, identities_for_drama,
                                       sample_shot_frames, scene_view_png)
from ..stages.table1 import shooting_script_text
from .partitions import dramas_partitions
from .provenance import provenance
from .resources import ArtifactStore, CatalogResource, LandingZone
from .vision import character_refinements

STAGE_VERSION = "2"  # 2: camera angle, events, reconciled shot size, registered layout
REVIEWS_FILE = "calibration_reviews.json"  # beside the episodes in the landing zone, written by reviewers


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
    check_specs=[dg.AssetCheckSpec("calibration_gate", asset="calibrated_shooting_scripts",
                                   description="Every calibration packet reviewed and at least 90 % accurate.")],
)
def calibrated_shooting_scripts(context: dg.AssetExecutionContext, catalog: CatalogResource, artifacts: ArtifactStore,
                                landing: LandingZone) -> dg.MaterializeResult:
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
              (position.get(a.episode_id, 0), keyframes[(a.episode_id, a.keyframe_index)].time_s))
             for a in annotations if a.item in images for i, p in enumerate(people.get(a.item, [])) if p.get("face_box")]
    identity_of = identities_for_drama(faces)

    by_shot = defaultdict(list)
    for a in annotations:
        if a.item in images:
            k = keyframes[(a.episode_id, a.keyframe_index)]
            by_shot[(a.episode_id, k.shot_index)].append(
                KeyframeEvidence(a.item, images[a.item], a.annotation, people.get(a.item, []), objects.get(a.item, [])))
    rows, curves, record_ids = [], {}, []
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
        view = view or next((png for png in map(scene_view_png, scripts) if png), None)
        for script in scripts:
            text = shooting_script_text(script)
            value = script.model_dump(mode="json")
            artifacts.write_json(value, drama_id, "calibrated_shooting_scripts", episode.episode_id, f"scene-{script.scene_number:04d}.json")
            artifacts.write_bytes(text.encode(), drama_id, "calibrated_shooting_scripts", episode.episode_id, f"scene-{script.scene_number:04d}.txt")
            rows.append(ShootingScriptRow(drama_id=drama_id, episode_id=episode.episode_id, scene_number=script.scene_number,
                                          shots=len(script.shots), script=value, text=text, calibration_status="pending", **prov))
            record_ids += [f"{script.script_id}/shot-{shot.shot_number:03d}" for shot in script.shots]
        curves[episode.episode_id] = [shot.highlight_score or 0.0 for script in scripts for shot in script.shots]

    packets = make_packets(record_ids, drama_id=drama_id) if record_ids else []
    reviews = _reviews(landing, drama_id)
    grades = [grade_packet(p, reviews) for p in packets]
    status = ("passed" if grades and all(g.status == "passed" for g in grades)
              else "needs_repair" if any(g.status == "needs_repair" for g in grades) else "pending")
    for row in rows:
        row.calibration_status = status
    artifacts.write_json({"packets": [{"packet_id": p.packet_id, "record_ids": p.record_ids} for p in packets],
                          "grades": [g.__dict__ for g in grades], "reviews_file": f"<landing>/{drama_id}/{REVIEWS_FILE}"},
                         drama_id, "calibrated_shooting_scripts", "calibration", "packets.json")
    db.replace_partition_rows(asset_key=prov["asset_key"], partition=drama_id, rows=rows, tables=[ShootingScriptRow])
    names = sorted({name for _, name in identity_of.values()})
    return dg.MaterializeResult(
        metadata={
            "shooting_scripts": len(rows),
            "shots": sum(r.shots for r in rows),
            "characters": len({cid for cid, _ in identity_of.values()}),
            "character_names": ", ".join(names[:20]) or "-",
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
            "highlight_curves": dg.MetadataValue.md(_curves_markdown(curves)),
            "example": dg.MetadataValue.md("```\n" + (rows[0].text if rows else "") + "```"),
        },
        check_results=[dg.AssetCheckResult(
            check_name="calibration_gate", passed=status == "passed",
            severity=dg.AssetCheckSeverity.ERROR if status == "needs_repair" else dg.AssetCheckSeverity.WARN,
            description={"pending": f"awaiting review: write {REVIEWS_FILE} in the drama's landing folder",
                         "needs_repair": "a packet is below 90 % accuracy: repair and review again"}.get(status),
            metadata={"packets": len(packets), **{g.packet_id: g.accuracy if g.accuracy is not None else "pending" for g in grades[:20]}})],
    )


def _reviews(landing: LandingZone, drama_id: str) -> dict[str, bool]:
    fs, root = open_fs(landing.resolved_url())
    path = f"{root}/{drama_id}/{REVIEWS_FILE}"
    if not fs.exists(path):
        return {}
    try:
        with fs.open(path, "rb") as f:
            return load_reviews(f.read().decode("utf-8"))
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        return {}  # an unreadable review file counts as not reviewed yet


def _curves_markdown(curves: dict[str, list[float]]) -> str:
    parts = []
    for episode_id, scores in list(curves.items())[:5]:
        png = base64.b64encode(plot_highlight_curve(scores)).decode()
        parts.append(f"**{episode_id}**\n\n![highlight curve of {episode_id}](data:image/png;base64,{png})")
    return "\n\n".join(parts) or "No shots."

"""calibrated_shooting_scripts: scenes and shots assembled from every earlier stage, with
character identities across the drama, highlight scores, camera angles, events, 3D positions
registered across each scene's shots, every field of the paper's annotation with its source,
Table 1 text, and the calibration packets whose human review gates the release and whose
corrections are applied. The work is `stages.scripts.assemble.assemble_drama`."""

import base64
from collections import Counter

import dagster as dg

from skyscript_assets.catalog import Catalog, CharacterRow, Loss, Provenance, ShootingScriptRow, queries
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.reporting import check, drama_check, loss_rows, provenance, reasons_table
from skyscript_assets.defs.platform.resources import (
    ArtifactsResource,
    CatalogResource,
    LandingZone,
    VisionModelsResource,
)
from skyscript_assets.stages.release import plots
from skyscript_assets.stages.scripts.assemble import (
    REVIEWS_FILE,
    REVIEWS_FOLDER,
    AnnotatedKeyframe,
    DramaEvidence,
    DramaScripts,
    EpisodeVideo,
    assemble_drama,
    read_review_files,
)
from skyscript_assets.stages.scripts.shot_size import SIZE_ORDER
from skyscript_assets.storage import ArtifactStore

ASSET = "calibrated_shooting_scripts"
FIGURES = (  # counts of DramaScripts.figures shown as they are
    "events",
    "shot_size_measured",
    "shot_size_disagreements",
    "occlusion_conflicts",
    "occlusion_conflicts_unresolved",
    "shots_registered",
    "shots_unregistered",
)


@dg.asset(
    partitions_def=dramas_partitions,
    deps=["character_refinements"],
    group_name="scripts",
    kinds={"python", "json"},
    description="One shooting script per scene (schema.ShootingScript and its Table 1 text): scenes grouped by "
    "continuity, character identities across episodes, camera angle and movement, shot size reconciled with the "
    "faces, events, highlight score, 3D locations registered across each scene's shots with a projection matrix "
    "per shot; people (age, gender, looks, emotion, VAD, action, shot type, line), objects (shot type) and music "
    "(audio and MLLM merged), each with its source where more than one stage supplies it; "
    "calibration packets of 200-500 shots sampled across the episodes for human review, graded against the 90 % "
    "gate, and the reviewers' corrections applied (source `reviewer`, the replaced values kept for audit).",
    check_specs=[
        drama_check(
            "calibration_gate",
            asset=ASSET,
            blocking=True,
            description="Every calibration packet reviewed and at least 90 % accurate; a "
            "packet below 90 % blocks the release of the drama.",
        )
    ],
)
def calibrated_shooting_scripts(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    artifacts: ArtifactsResource,
    landing: LandingZone,
    vision: VisionModelsResource,
) -> dg.MaterializeResult:
    db, store, drama_id = catalog.get(), artifacts.get(), context.partition_key
    evidence = _evidence(db, drama_id, landing.resolved_url())
    drama = assemble_drama(
        evidence,
        artifact_root=store.root_url,
        deepface_home=vision.deepface_home or None,
        asset_key=context.asset_key.to_user_string(),
    )
    prov = provenance(context, drama.stage_version)
    _write(db, store, drama, prov)
    return dg.MaterializeResult(metadata=_metadata(drama, store), check_results=[_gate(drama)])


def _evidence(db: Catalog, drama_id: str, landing_url: str) -> DramaEvidence:
    """The drama's episodes and shots, its valid annotated keyframes with their refined people and
    grounded objects, and the reviewers' exports."""
    shots: dict[str, list[tuple[int, float, float]]] = {}
    for shot in queries.shots(db, drama_id):
        shots.setdefault(shot.episode_id, []).append((shot.shot_index, shot.start_s, shot.end_s))
    episodes = [
        EpisodeVideo(e.episode_id, e.position, e.uri, e.has_audio, shots.get(e.episode_id, []))
        for e in queries.episodes(db, drama_id)
    ]
    valid = {
        (k.episode_id, k.keyframe_index): k
        for frames in queries.valid_keyframes(db, drama_id).values()
        for k in frames
    }
    people, objects = queries.people_by_item(db, drama_id), queries.objects_by_item(db, drama_id)
    keyframes = [
        AnnotatedKeyframe(
            a.item,
            a.episode_id,
            k.shot_index,
            k.time_s,
            k.uri,
            a.annotation,
            people.get(a.item, []),
            objects.get(a.item, []),
        )
        for a in queries.annotations(db, drama_id)
        if (k := valid.get((a.episode_id, a.keyframe_index))) is not None
    ]
    return DramaEvidence(drama_id, episodes, keyframes, read_review_files(landing_url, drama_id))


def _write(db: Catalog, store: ArtifactStore, drama: DramaScripts, prov: Provenance) -> None:
    """The artifacts, then the scripts, characters and losses replacing this asset's rows of the drama."""
    for parts, content in drama.files():
        if isinstance(content, bytes):
            store.write_bytes(content, drama.drama_id, ASSET, *parts)
        else:
            store.write_json(content, drama.drama_id, ASSET, *parts)
    rows = [
        ShootingScriptRow(
            drama_id=drama.drama_id,
            episode_id=s.episode_id,
            scene_number=s.script.scene_number,
            shots=len(s.script.shots),
            script=s.script.model_dump(mode="json"),
            text=s.text,
            calibration_status=drama.calibration.status,
            **prov.columns(),
        )
        for s in drama.scenes
    ]
    library = [
        CharacterRow(
            drama_id=drama.drama_id,
            character_id=c.character_id,
            name=c.name,
            named_from=c.named_from,
            observations=c.observations,
            first_episode_id=c.first_episode_id,
            first_time_s=c.first_time_s,
            face_uri=store.uri(drama.drama_id, ASSET, *drama.face_parts(c)),
            embedding_kind=drama.embedding_kind,
            **prov.columns(),
        )
        for c in drama.library
    ]
    losses = [row for episode, records in drama.losses.items() for row in loss_rows(records, prov, episode)]
    db.replace_partition_rows(
        asset_key=prov.asset_key,
        partition=prov.partition,
        rows=[*rows, *library, *losses],
        tables=[ShootingScriptRow, CharacterRow, Loss],
    )


def _metadata(drama: DramaScripts, store: ArtifactStore) -> dict:
    figures, calibration, scenes, lost = drama.figures, drama.calibration, drama.scenes, drama.loss_records
    shots = figures["shots"]
    embeddings = "deepface ArcFace" if drama.embedding_kind == "deepface" else f"hog ({drama.embeddings_note})"
    return {
        "shooting_scripts": len(scenes),
        "shots": sum(len(s.script.shots) for s in scenes),
        "characters": drama.characters,
        "character_names": ", ".join(drama.character_names[:20]) or "-",
        "character_library": dg.MetadataValue.md(_library_markdown(drama)),
        "identity_embeddings": embeddings,
        "camera_angle_coverage": round(figures["shots_with_camera_angle"] / shots, 3) if shots else 0.0,
        **{name: figures[name] for name in FIGURES},
        "measures_not_run": len(drama.not_run),
        "not_run": dg.MetadataValue.md(_not_run_markdown(drama)),
        "keyframes_lost": len(lost),
        "loss_reasons": reasons_table(lost),
        "calibration_packets": len(calibration.packets),
        "calibration_sampled_shots": sum(len(p.record_ids) for p in calibration.packets),
        "calibration_status": calibration.status,
        "corrections_applied": calibration.corrections_applied,
        **({"calibration_accuracy": calibration.accuracy} if calibration.accuracy is not None else {}),
        "calibration_tasks": dg.MetadataValue.path(store.path(drama.drama_id, ASSET, "calibration")),
        "review_files": calibration.review_files,
        "review_files_unreadable": ", ".join(calibration.unreadable_reviews) or "-",
        "episodes_to_repair": ", ".join(calibration.episodes_to_repair) or "-",
        **_pictures(drama),
        "example": dg.MetadataValue.md("```\n" + (scenes[0].text if scenes else "") + "```"),
    }


def _pictures(drama: DramaScripts) -> dict:
    """The virtual view of the first scene with people placed in 3D, the first episodes' highlight
    curves, and the shot sizes of the drama (a chart and its table)."""
    view = drama.virtual_view
    curves = [f"**{e}**\n\n" + _image_md(f"highlight curve of {e}", png) for e, png in drama.curve_figures.items()]
    return {
        "shot_sizes": dg.MetadataValue.md(_shot_sizes_markdown(drama)),
        "virtual_view": dg.MetadataValue.md(
            _image_md("characters of a scene from a virtual camera", view) if view else "Nobody placed in 3D."
        ),
        "highlight_curves": dg.MetadataValue.md("\n\n".join(curves) or "No shots."),
    }


def _shot_sizes_markdown(drama: DramaScripts) -> str:
    """How many shots of each size (closest first, then any other value, then those without one)."""
    found = Counter(shot.shot_size or "unknown" for scene in drama.scenes for shot in scene.script.shots)
    if not found:
        return "No shots."
    order = [size for size in SIZE_ORDER if size in found] + sorted(set(found) - {*SIZE_ORDER, "unknown"})
    counts = {size: found[size] for size in order + (["unknown"] if "unknown" in found else [])}
    total = sum(counts.values())
    chart = plots.bar_chart("Shot sizes", [(size.replace("_", " "), n) for size, n in counts.items()], unit="shots")
    table = ["| shot size | shots | share |", "|---|---:|---:|"]
    table += [f"| {size} | {n} | {n / total:.0%} |" for size, n in counts.items()]
    return _image_md("shot sizes of the drama", chart) + "\n\n" + "\n".join(table)


def _gate(drama: DramaScripts) -> dg.AssetCheckResult:
    """Passed once every packet is reviewed at >= 90 %; an error (blocking the release) when one is below."""
    calibration = drama.calibration
    why = {
        "pending": "awaiting review: import calibration/*.tasks.json into Label Studio and put its JSON export in "
        f"the drama's landing folder ({REVIEWS_FOLDER}/ or {REVIEWS_FILE})",
        "needs_repair": "a packet is below 90 % accuracy: repair episodes "
        f"{', '.join(calibration.episodes_to_repair)}, re-run them and review again",
    }
    return check(
        "calibration_gate",
        calibration.status == "passed",
        severity="error" if calibration.status == "needs_repair" else "warn",
        why=why.get(calibration.status),
        packets=len(calibration.packets),
        **{g.packet_id: g.accuracy if g.accuracy is not None else "pending" for g in calibration.grades[:20]},
    )


def _image_md(alt: str, png: bytes) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _library_markdown(drama: DramaScripts) -> str:
    lines = ["| id | name | named from | faces | first seen |", "|---|---|---|---:|---|"]
    lines += [
        f"| {c.character_id} | {c.name} | {c.named_from} | {c.observations} | {c.first_episode_id} "
        f"{c.first_time_s:.1f}s |"
        for c in drama.library[:50]
    ]
    return "\n".join(lines) if drama.library else "No faces, no characters."


def _not_run_markdown(drama: DramaScripts) -> str:
    lines = ["| episode | measure | why |", "|---|---|---|"]
    lines += [f"| {n.episode_id} | {n.measure} | {n.reason.replace('|', '/')} |" for n in drama.not_run[:50]]
    return "\n".join(lines) if drama.not_run else "Every measure ran on every episode."

"""restored_scripts, script_pairs and loss_rate_report: screenplays restored from the shooting
scripts, the dataset release as Parquet shards with its card, and every stage's loss rates."""

import json
from collections import Counter, defaultdict

import dagster as dg
import fsspec
from sqlalchemy import func, select

from ..catalog import Drama, Episode, Keyframe, Loss, ReleasedKeyframe, ReleaseShard, ShootingScriptRow
from ..schema import ShootingScript
from ..stages.fountain import render_fountain
from ..stages.release import PAIR_SCHEMA, RESTORATION_SCHEMA, dataset_card, read_shards, write_shards
from ..stages.restore import filter_restorations
from .provenance import provenance, reasons_table
from .resources import ArtifactStore, CatalogResource, report_path
from .scripts import calibrated_shooting_scripts
from .partitions import dramas_partitions

STAGE_VERSION = "1"
RENDERER_ID = "fountain-renderer/1"
LICENCES = ["Source videos: their owners' licences, recorded per drama in drama.json `source`",
            "Annotations and scripts: as the dataset's publisher decides"]


class RestoredScriptsConfig(dg.Config):
    rows_per_shard: int = 50_000


@dg.asset(
    partitions_def=dramas_partitions,
    deps=[calibrated_shooting_scripts],
    group_name="release",
    kinds={"python", "parquet"},
    description="Screenplays (Fountain) restored from every shooting script, filtered (parses, names the "
    "characters, length bounds, near-duplicates removed), as Parquet shards per drama. Offline: the deterministic "
    "renderer gives one faithful restoration per shooting script.",
)
def restored_scripts(context: dg.AssetExecutionContext, config: RestoredScriptsConfig, catalog: CatalogResource,
                     artifacts: ArtifactStore) -> dg.MaterializeResult:
    drama_id = context.partition_key
    db = catalog.get()
    prov = provenance(context, STAGE_VERSION, RENDERER_ID)
    with db.session() as session:
        rows = list(session.scalars(select(ShootingScriptRow).where(ShootingScriptRow.drama_id == drama_id)
                                    .order_by(ShootingScriptRow.episode_id, ShootingScriptRow.scene_number)))
    restorations, losses = [], []
    for row in rows:
        script = ShootingScript.model_validate(row.script)
        reference = render_fountain(script)
        candidates = [reference]  # n LLM samples per request join here when a text LLM is configured
        kept, dropped = filter_restorations(script, candidates, reference)
        losses += dropped
        restorations += [{"script_id": script.script_id, "restoration_index": i, "style": "faithful",
                          "script": candidates[i], "model_id": RENDERER_ID} for i in kept]
    fs, folder = _folder(artifacts, drama_id, "restored_scripts")
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    shards = write_shards(restorations, fs, folder, schema=RESTORATION_SCHEMA, rows_per_shard=config.rows_per_shard)
    _record_shards(db, prov, drama_id, shards, fs, losses)
    return dg.MaterializeResult(metadata={
        "shooting_scripts": len(rows), "restorations": len(restorations), "lost": len(losses),
        "shards": len(shards), "model_id": RENDERER_ID, "loss_reasons": reasons_table(losses),
    })


class ScriptPairsConfig(dg.Config):
    include_uncalibrated: bool = False  # release a drama whose calibration has not passed (rows keep its status)
    rows_per_shard: int = 50_000


@dg.asset(
    partitions_def=dramas_partitions,
    deps=[restored_scripts],
    group_name="release",
    kinds={"python", "parquet"},
    description="The release: (script, shooting script) pairs with ids, highlight score, calibration status and "
    "the pixelated keyframes only, as Parquet shards that datasets.load_dataset('parquet') loads, and a dataset card. "
    "Only calibrated dramas unless include_uncalibrated.",
    check_specs=[dg.AssetCheckSpec("released_only_calibrated", asset="script_pairs",
                                   description="Every released pair comes from a drama whose calibration passed.")],
)
def script_pairs(context: dg.AssetExecutionContext, config: ScriptPairsConfig, catalog: CatalogResource,
                 artifacts: ArtifactStore) -> dg.MaterializeResult:
    drama_id = context.partition_key
    db = catalog.get()
    prov = provenance(context, STAGE_VERSION)
    with db.session() as session:
        scripts = {f"{r.drama_id}/{r.episode_id}/scene-{r.scene_number:04d}": r for r in session.scalars(
            select(ShootingScriptRow).where(ShootingScriptRow.drama_id == drama_id))}
        released = defaultdict(list)
        for row in session.scalars(select(ReleasedKeyframe).where(ReleasedKeyframe.drama_id == drama_id,
                                                                  ReleasedKeyframe.faces_left == 0)):
            released[row.episode_id].append(row.uri)
        restoration_shards = list(session.scalars(select(ReleaseShard.uri).where(
            ReleaseShard.partition == drama_id, ReleaseShard.asset_key == "restored_scripts")))
    statuses = {r.calibration_status for r in scripts.values()}
    calibrated = statuses == {"passed"}
    fs, folder = _folder(artifacts, drama_id, "script_pairs")
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    fs.makedirs(folder, exist_ok=True)  # the card is written even when nothing is released yet
    pairs = []
    if calibrated or config.include_uncalibrated:
        for restoration in read_shards(fs, restoration_shards):
            row = scripts.get(restoration["script_id"])
            if row is None:
                continue
            script = ShootingScript.model_validate(row.script)
            scores = [s.highlight_score for s in script.shots if s.highlight_score is not None]
            pairs.append({
                "pair_id": f"{script.script_id}/r{restoration['restoration_index']:03d}", "drama_id": drama_id,
                "episode_id": script.episode_id, "scene_number": script.scene_number,
                "shot_numbers": [s.shot_number for s in script.shots], "restoration_index": restoration["restoration_index"],
                "style": restoration["style"], "script": restoration["script"], "shooting_script_json": json.dumps(row.script),
                "shooting_script_text": row.text, "highlight_score": sum(scores) / len(scores) if scores else None,
                "calibration_status": row.calibration_status, "model_id": restoration["model_id"],
            })
    shards = write_shards(pairs, fs, f"{folder}/data", schema=PAIR_SCHEMA, rows_per_shard=config.rows_per_shard) if pairs else []
    _record_shards(db, prov, drama_id, shards, fs, [])
    card = dataset_card(name=f"SkyScript pairs: {drama_id}", pairs=len(pairs), dramas=1 if pairs else 0,
                        shooting_scripts=len({p["pair_id"].rsplit("/", 1)[0] for p in pairs}), shard_glob="data/*.parquet",
                        loss_rates=_loss_rates(db, drama_id), licences=LICENCES)
    with fs.open(f"{folder}/README.md", "wb") as f:
        f.write(card.encode())
    keyframes_manifest = {episode: sorted(uris) for episode, uris in released.items()}
    with fs.open(f"{folder}/released_keyframes.json", "wb") as f:
        f.write(json.dumps(keyframes_manifest, indent=2).encode())
    uncalibrated = sum(1 for p in pairs if p["calibration_status"] != "passed")
    return dg.MaterializeResult(
        metadata={"pairs": len(pairs), "shards": len(shards), "calibration": ", ".join(sorted(statuses)) or "-",
                  "released_keyframes": sum(len(v) for v in released.values()),
                  "dataset_card": dg.MetadataValue.md(card.split("---", 2)[-1]),
                  "folder": dg.MetadataValue.path(folder)},
        check_results=[dg.AssetCheckResult(
            check_name="released_only_calibrated", passed=uncalibrated == 0, severity=dg.AssetCheckSeverity.WARN,
            description=f"{uncalibrated} pairs released before calibration passed (include_uncalibrated)" if uncalibrated else None,
            metadata={"uncalibrated_pairs": uncalibrated})],
    )


@dg.asset(
    deps=[script_pairs],
    group_name="reports",
    kinds={"python", "markdown"},
    description="Every stage's loss rates across all dramas, as a table in the UI and a Markdown file.",
)
def loss_rate_report(context: dg.AssetExecutionContext, catalog: CatalogResource, artifacts: ArtifactStore) -> dg.MaterializeResult:
    db = catalog.get()
    with db.session() as session:
        dramas = list(session.scalars(select(Drama.drama_id).order_by(Drama.drama_id)))
    lines = ["| drama | stage | items | lost | loss rate |", "|---|---|---:|---:|---:|"]
    totals: Counter = Counter()
    for drama_id in dramas:
        for stage, (items, lost) in sorted(_stage_counts(db, drama_id).items()):
            totals[(stage, "items")] += items
            totals[(stage, "lost")] += lost
            lines.append(f"| {drama_id} | {stage} | {items} | {lost} | {lost / items:.2%} |" if items else
                         f"| {drama_id} | {stage} | 0 | {lost} | - |")
    for stage in sorted({s for s, _ in totals}):
        items, lost = totals[(stage, "items")], totals[(stage, "lost")]
        lines.append(f"| **all** | {stage} | {items} | {lost} | {lost / items:.2%} |" if items else f"| **all** | {stage} | 0 | {lost} | - |")
    markdown = "# Loss rates by stage\n\n" + "\n".join(lines) + "\n"
    fs, path = report_path(artifacts, "loss_rate_report.md")
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path, "wb") as f:
        f.write(markdown.encode())
    return dg.MaterializeResult(metadata={"dramas": len(dramas), "report": dg.MetadataValue.md(markdown),
                                          "path": dg.MetadataValue.path(path)})


def _stage_counts(db, drama_id: str) -> dict[str, tuple[int, int]]:
    """(items the stage looked at, items it lost) per stage, for one drama."""
    with db.session() as session:
        lost = Counter(dict(session.execute(select(Loss.stage, func.count()).where(Loss.drama_id == drama_id)
                                            .group_by(Loss.stage)).all()))
        episodes = session.scalar(select(func.count()).select_from(Episode).where(Episode.drama_id == drama_id)) or 0
        keyframes = session.scalar(select(func.count()).select_from(Keyframe).where(Keyframe.drama_id == drama_id)) or 0
        invalid = session.scalar(select(func.count()).select_from(Keyframe).where(Keyframe.drama_id == drama_id,
                                                                                   Keyframe.valid.is_(False))) or 0
    counts = {"drama_manifest": (episodes + lost["drama_manifest"], lost["drama_manifest"]),
              "keyframes (invalid)": (keyframes, invalid)}
    valid = keyframes - invalid
    for stage in ("raw_mllm_json", "cleaned_json", "detections", "character_refinements"):  # per valid keyframe
        counts[stage] = (valid, lost[stage])
    for stage, count in lost.items():
        counts.setdefault(stage, (count, count))
    return counts


def _loss_rates(db, drama_id: str) -> dict[str, float]:
    return {stage: lost / items for stage, (items, lost) in _stage_counts(db, drama_id).items() if items}


def _folder(artifacts: ArtifactStore, drama_id: str, asset: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, _ = fsspec.core.url_to_fs(artifacts.resolved_root())
    return fs, artifacts.path(drama_id, asset)


def _record_shards(db, prov: dict, drama_id: str, shards, fs, losses) -> None:
    from .provenance import loss_rows

    rows = [ReleaseShard(drama_id=drama_id, uri=s.path if fs.protocol in ("file", ("file", "local")) else fs.unstrip_protocol(s.path),
                         rows=s.rows, size_bytes=s.bytes, **prov) for s in shards]
    db.replace_partition_rows(asset_key=prov["asset_key"], partition=drama_id,
                              rows=[*rows, *loss_rows(losses, drama_id, prov)], tables=[ReleaseShard, Loss])

"""restored_scripts, script_pairs and loss_rate_report: screenplays restored from the shooting
scripts, the dataset release as Parquet shards with its card, and every stage's loss rates."""

import json
import math
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import fsspec
from sqlalchemy import func, select

from skyscript_assets.catalog import Drama, Episode, Keyframe, Loss, ReleasedKeyframe, ReleaseShard, ShootingScriptRow
from skyscript_assets.schema import ShootingScript
from skyscript_assets.stages.release.relationships import relationship_tables
from skyscript_assets.stages.release.shards import (
    PAIR_SCHEMA,
    PAIR_SHARD_FOLDER,
    RELATIONSHIP_FILES,
    RESTORATION_SCHEMA,
    dataset_card,
    iter_shard_rows,
    pair_shards,
    write_parquet,
    write_shards,
)
from skyscript_assets.stages.release.restore import RestorationPlan, faithful_restoration, restore_script
from skyscript_assets.defs.platform.reporting import provenance, reasons_table
from skyscript_assets.defs.platform.resources import (
    ArtifactStore,
    CatalogResource,
    RestorationLlmResource,
    report_path,
)
from skyscript_assets.defs.scripts.assets import calibrated_shooting_scripts
from skyscript_assets.defs.platform.partitions import dramas_partitions

STAGE_VERSION = "1"
RENDERER_ID = "fountain-renderer/1"
LICENCES = ["Source videos: their owners' licences, recorded per drama in drama.json `source`",
            "Annotations and scripts: as the dataset's publisher decides"]


class RestoredScriptsConfig(dg.Config):
    rows_per_shard: int = 50_000
    # With an LLM configured (RestorationLlmResource); offline it is one faithful rendering each.
    restorations_per_script: int = 100  # N (the paper: 100)
    samples_per_request: int = 0  # 0: all N in one request per shooting script; k: N/k requests of k, one style each
    seed: int = 0  # styles and sampling seeds derive from it: equal config, equal requests
    temperature: float = 0.9
    max_tokens: int = 1024
    language: str = ""  # default: the drama's language from drama.json, else "en"


@dg.asset(
    partitions_def=dramas_partitions,
    deps=[calibrated_shooting_scripts],
    group_name="release",
    kinds={"python", "parquet"},
    description="Screenplays (Fountain) restored from every shooting script by the restoration LLM: N per shooting "
    "script in requests of n samples, style controls (genre, tone, length, language) varied across them, filtered "
    "(parses, names the characters, length bounds, MinHash near-duplicates removed), as Parquet shards per drama. "
    "Without an LLM: the deterministic renderer gives one faithful restoration per shooting script.",
)
def restored_scripts(context: dg.AssetExecutionContext, config: RestoredScriptsConfig, catalog: CatalogResource,
                     artifacts: ArtifactStore, restoration_llm: RestorationLlmResource) -> dg.MaterializeResult:
    drama_id = context.partition_key
    db = catalog.get()
    with db.session() as session:
        rows = list(session.scalars(select(ShootingScriptRow).where(ShootingScriptRow.drama_id == drama_id)
                                    .order_by(ShootingScriptRow.episode_id, ShootingScriptRow.scene_number)))
        language = config.language or session.scalar(select(Drama.language).where(Drama.drama_id == drama_id)) or "en"
    scripts = [ShootingScript.model_validate(row.script) for row in rows]
    generator, llm_status = _restoration_generator(context, restoration_llm) if scripts else (None, "not needed: no shooting scripts")
    plan = RestorationPlan(restorations=config.restorations_per_script, samples_per_request=config.samples_per_request,
                           seed=config.seed, language=language, temperature=config.temperature, max_tokens=config.max_tokens)
    model_id = generator.model_id if generator else RENDERER_ID
    prov = provenance(context, STAGE_VERSION, model_id)
    losses: list = []
    fs, folder = _folder(artifacts, drama_id, "restored_scripts")
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=generator.max_concurrency if generator else 1) as pool:
        if generator:
            results = pool.map(lambda script: restore_script(script, generator, plan), scripts)
        else:
            results = map(lambda script: faithful_restoration(script, RENDERER_ID), scripts)

        def restorations():  # streamed into the shards: a drama's N x scripts rows never sit in memory at once
            for kept, dropped in results:
                losses.extend(dropped)
                yield from kept

        try:
            shards = write_shards(restorations(), fs, folder, schema=RESTORATION_SCHEMA, rows_per_shard=config.rows_per_shard)
        finally:
            if generator:
                generator.close()
    _record_shards(db, prov, drama_id, shards, fs, losses)
    kept = sum(s.rows for s in shards)
    per_script = plan.restorations if generator else 1
    return dg.MaterializeResult(metadata={
        "shooting_scripts": len(rows), "restorations": kept, "lost": len(losses),
        "restorations_per_script": per_script, "shards": len(shards), "model_id": model_id, "llm": llm_status,
        "language": language, "seconds": round(time.perf_counter() - started, 2), "loss_reasons": reasons_table(losses),
        **({"requests_planned": len(scripts) * math.ceil(plan.restorations / plan.per_request),
            "samples_per_request": plan.per_request} if generator else {}),
    })


def _pair_fields(script: ShootingScript, row: ShootingScriptRow) -> dict:
    """The fields every pair of one shooting script shares."""
    scores = [s.highlight_score for s in script.shots if s.highlight_score is not None]
    return {"drama_id": script.drama_id, "episode_id": script.episode_id, "scene_number": script.scene_number,
            "shot_numbers": [s.shot_number for s in script.shots], "shooting_script_json": json.dumps(row.script),
            "shooting_script_text": row.text, "highlight_score": sum(scores) / len(scores) if scores else None,
            "calibration_status": row.calibration_status}


def _restoration_generator(context: dg.AssetExecutionContext, resource: RestorationLlmResource):
    """(the text generator or None, a one-line status for the metadata)."""
    from skyscript_assets.models.base import WeightsMissing
    from skyscript_assets.models.mllm import BackendUnavailable

    if not resource.is_configured():
        return None, "not configured (RestorationLlmResource.backend is empty): the faithful renderer, one per shooting script"
    try:
        generator = resource.load()
    except (BackendUnavailable, WeightsMissing) as exc:
        status = str(exc) if isinstance(exc, WeightsMissing) else f"not run: {exc}"  # WeightsMissing says "not run" itself
        context.log.warning(f"restoration LLM {status}")
        return None, status
    return generator, generator.model_id


class ScriptPairsConfig(dg.Config):
    include_uncalibrated: bool = False  # release a drama whose calibration has not passed (rows keep its status)
    rows_per_shard: int = 50_000


@dg.asset(
    partitions_def=dramas_partitions,
    deps=[restored_scripts],
    group_name="release",
    kinds={"python", "parquet"},
    description="The release: (script, shooting script) pairs with ids, highlight score, calibration status and "
    "the pixelated keyframes only, as Parquet shards that datasets.load_dataset('parquet') loads, a dataset card, and "
    "the relationships (time-varying graph per episode with LLM labels when configured, pairing compatibility). "
    "Only calibrated dramas unless include_uncalibrated.",
    check_specs=[dg.AssetCheckSpec("released_only_calibrated", asset="script_pairs",
                                   description="Every released pair comes from a drama whose calibration passed.")],
)
def script_pairs(context: dg.AssetExecutionContext, config: ScriptPairsConfig, catalog: CatalogResource,
                 artifacts: ArtifactStore, restoration_llm: RestorationLlmResource) -> dg.MaterializeResult:
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
    releasing = calibrated or config.include_uncalibrated
    fs, folder = _folder(artifacts, drama_id, "script_pairs")
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    fs.makedirs(folder, exist_ok=True)  # the card is written even when nothing is released yet
    counts: Counter = Counter()
    released_scripts: set[str] = set()
    parsed = {script_id: ShootingScript.model_validate(row.script) for script_id, row in scripts.items()}
    shared = {script_id: _pair_fields(parsed[script_id], row) for script_id, row in scripts.items()}  # once per scene, not per pair

    def pairs():  # streamed from the restoration shards into the release shards
        for restoration in iter_shard_rows(fs, restoration_shards):
            fields = shared.get(restoration["script_id"])
            if fields is None:
                continue
            counts["pairs"] += 1
            counts["uncalibrated"] += fields["calibration_status"] != "passed"
            released_scripts.add(restoration["script_id"])
            yield {
                **fields, "pair_id": f"{restoration['script_id']}/r{restoration['restoration_index']:03d}",
                "restoration_index": restoration["restoration_index"], "style": restoration["style"],
                "script": restoration["script"], "model_id": restoration["model_id"], "seed": restoration.get("seed"),
            }

    shards = write_shards(pairs(), fs, f"{folder}/{PAIR_SHARD_FOLDER}", schema=PAIR_SCHEMA, rows_per_shard=config.rows_per_shard) if releasing else []
    losses, relationship_rows, label_status = [], {}, "-"
    if releasing:
        generator, label_status = _restoration_generator(context, restoration_llm)
        try:
            edges, character_pairs, losses = relationship_tables(
                drama_id, list(parsed.values()), generator)
        finally:
            if generator:
                generator.close()
        for path, table in zip(RELATIONSHIP_FILES, (edges, character_pairs)):
            shards.append(write_parquet(table, fs, f"{folder}/{path}", schema=RELATIONSHIP_FILES[path]))
            relationship_rows[path] = len(table)
    _record_shards(db, prov, drama_id, shards, fs, losses)
    card = dataset_card(name=f"SkyScript pairs: {drama_id}", pairs=counts["pairs"], dramas=1 if counts["pairs"] else 0,
                        shooting_scripts=len(released_scripts), shard_glob=f"{PAIR_SHARD_FOLDER}/*.parquet",
                        loss_rates=_loss_rates(db, drama_id), licences=LICENCES, relationship_rows=relationship_rows)
    with fs.open(f"{folder}/README.md", "wb") as f:
        f.write(card.encode())
    keyframes_manifest = {episode: sorted(uris) for episode, uris in released.items()}
    with fs.open(f"{folder}/released_keyframes.json", "wb") as f:
        f.write(json.dumps(keyframes_manifest, indent=2).encode())
    uncalibrated = counts["uncalibrated"]
    return dg.MaterializeResult(
        metadata={"pairs": counts["pairs"], "shards": len(pair_shards(s.path for s in shards)),
                  "calibration": ", ".join(sorted(statuses)) or "-",
                  "released_keyframes": sum(len(v) for v in released.values()),
                  "relationship_edges": relationship_rows.get("relationships/relationship_edges.parquet", 0),
                  "character_pairs": relationship_rows.get("relationships/character_pairs.parquet", 0),
                  "relationship_labels": label_status,
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
        # restorations kept, and relationship edges written: the items beside those lost
        restorations = session.scalar(select(func.sum(ReleaseShard.rows)).where(
            ReleaseShard.partition == drama_id, ReleaseShard.asset_key == "restored_scripts")) or 0
        edges = session.scalar(select(func.sum(ReleaseShard.rows)).where(
            ReleaseShard.partition == drama_id, ReleaseShard.uri.like("%/relationship_edges.parquet"))) or 0
    counts = {"drama_manifest": (episodes + lost["drama_manifest"], lost["drama_manifest"]),
              "keyframes (invalid)": (keyframes, invalid)}
    valid = keyframes - invalid
    for stage in ("raw_mllm_json", "cleaned_json", "detections", "character_refinements"):  # per valid keyframe
        counts[stage] = (valid, lost[stage])
    if restorations or lost["restored_scripts"]:
        counts["restored_scripts"] = (restorations + lost["restored_scripts"], lost["restored_scripts"])
    if edges:
        counts["relationships"] = (edges, lost["relationships"])  # an unlabelled edge is still written
    for stage, count in lost.items():
        counts.setdefault(stage, (count, count))
    return counts


def _loss_rates(db, drama_id: str) -> dict[str, float]:
    return {stage: lost / items for stage, (items, lost) in _stage_counts(db, drama_id).items() if items}


def _folder(artifacts: ArtifactStore, drama_id: str, asset: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, _ = fsspec.core.url_to_fs(artifacts.resolved_root())
    return fs, artifacts.path(drama_id, asset)


def _record_shards(db, prov: dict, drama_id: str, shards, fs, losses) -> None:
    from skyscript_assets.defs.platform.reporting import loss_rows

    rows = [ReleaseShard(drama_id=drama_id, uri=s.path if fs.protocol in ("file", ("file", "local")) else fs.unstrip_protocol(s.path),
                         rows=s.rows, size_bytes=s.bytes, **prov) for s in shards]
    db.replace_partition_rows(asset_key=prov["asset_key"], partition=drama_id,
                              rows=[*rows, *loss_rows(losses, drama_id, prov)], tables=[ReleaseShard, Loss])

"""restored_scripts and script_pairs: screenplays restored from the shooting scripts, and the
dataset release as Parquet shards with its card (stages/release: restore, pairs)."""

import time

import dagster as dg

from skyscript_assets.catalog import Catalog, Loss, Provenance, ReleaseShard, queries
from skyscript_assets.defs.platform.partitions import dramas_partitions
from skyscript_assets.defs.platform.placement import restoration_placement
from skyscript_assets.defs.platform.reporting import check, drama_check, loss_rows, provenance, reasons_table
from skyscript_assets.defs.platform.resources import ArtifactsResource, CatalogResource, RestorationLlmResource
from skyscript_assets.schema import ShootingScript
from skyscript_assets.stages.release import pairs, plots, restore
from skyscript_assets.stages.release.loss_report import (
    DEFAULT_MAX_LOSS_RATES,
    STEP_STAGES,
    DramaCounts,
    StageTally,
    stage_table,
    tally_drama,
)
from skyscript_assets.storage import ArtifactStore

RESTORATION = restoration_placement()


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
    deps=["calibrated_shooting_scripts"],
    group_name="release",
    kinds={"python", "parquet"},
    pool=RESTORATION.pool,  # a GPU only when the restoration LLM is loaded in this step
    op_tags=RESTORATION.op_tags,
    description="Screenplays (Fountain) restored from every shooting script by the restoration LLM: N per shooting "
    "script in requests of n samples, style controls (genre, tone, length, language) varied across them, filtered "
    "(parses, names the characters, length bounds, MinHash near-duplicates removed), as Parquet shards per drama. "
    "Without an LLM: the deterministic renderer gives one faithful restoration per shooting script.",
)
def restored_scripts(
    context: dg.AssetExecutionContext,
    config: RestoredScriptsConfig,
    catalog: CatalogResource,
    artifacts: ArtifactsResource,
    restoration_llm: RestorationLlmResource,
) -> dg.MaterializeResult:
    db, store, drama_id, started = catalog.get(), artifacts.get(), context.partition_key, time.perf_counter()
    scripts = [ShootingScript.model_validate(row.script) for row in queries.shooting_scripts(db, drama_id)]
    plan = _plan(config, config.language or queries.drama_language(db, drama_id) or "en")
    generator, llm_status = (
        _text_generator(context, restoration_llm) if scripts else (None, "not needed: no shooting scripts")
    )
    try:
        restored = restore.restore_drama(
            scripts, generator, plan, *store.folder(drama_id, "restored_scripts"), rows_per_shard=config.rows_per_shard
        )
    finally:
        if generator:
            generator.close()
    prov = provenance(context, restored.stage_version, restored.model_id)
    _record(db, store, prov, restored.shards, restored.losses)
    return dg.MaterializeResult(
        metadata={
            "shooting_scripts": len(scripts),
            "restorations": restored.kept,
            "lost": len(restored.losses),
            "restorations_per_script": restored.per_script,
            "shards": len(restored.shards),
            "model_id": restored.model_id,
            "llm": llm_status,
            "language": plan.language,
            "seconds": round(time.perf_counter() - started, 2),
            "loss_reasons": reasons_table(restored.losses),
            **({"requests_planned": restored.requests, "samples_per_request": plan.per_request} if generator else {}),
        }
    )


def _plan(config: RestoredScriptsConfig, language: str) -> restore.RestorationPlan:
    return restore.RestorationPlan(
        restorations=config.restorations_per_script,
        samples_per_request=config.samples_per_request,
        seed=config.seed,
        language=language,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
    )


class ScriptPairsConfig(dg.Config):
    include_uncalibrated: bool = False  # release a drama whose calibration has not passed (rows keep its status)
    rows_per_shard: int = 50_000


@dg.asset(
    partitions_def=dramas_partitions,
    deps=["restored_scripts"],
    group_name="release",
    kinds={"python", "parquet"},
    description="The release: (script, shooting script) pairs with ids, highlight score, calibration status and "
    "the pixelated keyframes only, as Parquet shards that datasets.load_dataset('parquet') loads, a dataset card, and "
    "the relationships (time-varying graph per episode with LLM labels when configured, pairing compatibility). "
    "Only calibrated dramas unless include_uncalibrated.",
    check_specs=[
        drama_check(
            "released_only_calibrated",
            asset="script_pairs",
            description="Every released pair comes from a drama whose calibration passed.",
        )
    ],
)
def script_pairs(
    context: dg.AssetExecutionContext,
    config: ScriptPairsConfig,
    catalog: CatalogResource,
    artifacts: ArtifactsResource,
    restoration_llm: RestorationLlmResource,
) -> dg.MaterializeResult:
    db, store, drama_id = catalog.get(), artifacts.get(), context.partition_key
    scripts = [
        pairs.CalibratedScript(ShootingScript.model_validate(r.script), r.script, r.text, r.calibration_status)
        for r in queries.shooting_scripts(db, drama_id)
    ]
    releasing = pairs.is_released(scripts, config.include_uncalibrated)
    labeller, label_status = _text_generator(context, restoration_llm) if releasing else (None, "-")
    try:
        release = pairs.release_drama(
            drama_id,
            scripts,
            queries.shard_uris(db, drama_id, "restored_scripts"),
            queries.released_keyframes(db, drama_id),
            *store.folder(drama_id, "script_pairs"),
            include_uncalibrated=config.include_uncalibrated,
            rows_per_shard=config.rows_per_shard,
            labeller=labeller,
            loss_counts=DramaCounts(**queries.loss_counts(db, drama_id, STEP_STAGES)),
        )
    finally:
        if labeller:
            labeller.close()
    # the edges' labels come from the labeller: its model id goes with the rows (the loss report reads it)
    _record(db, store, provenance(context, release.stage_version, release.labeller_id), release.shards, release.losses)
    # the drama's losses per stage as the catalog holds them now, this release's included
    stages = tally_drama(DramaCounts(**queries.loss_counts(db, drama_id, STEP_STAGES)))
    return _pairs_result(release, label_status, stages)


def _pairs_result(release: pairs.Release, label_status: str, stages: list[StageTally]) -> dg.MaterializeResult:
    uncalibrated = release.uncalibrated
    chart = plots.stage_rates_chart(stages, DEFAULT_MAX_LOSS_RATES, title="Loss and flag rates per stage, this drama")
    return dg.MaterializeResult(
        metadata={
            "loss_per_stage": dg.MetadataValue.md(
                plots.png_markdown("loss and flag rates per stage", chart) + "\n\n" + stage_table(stages)
            ),
            "pairs": release.pairs,
            "shards": len(release.pair_shards),
            "calibration": ", ".join(release.statuses) or "-",
            "released_keyframes": release.released_keyframes,
            "relationship_edges": release.relationship_rows.get(pairs.EDGES_FILE, 0),
            "character_pairs": release.relationship_rows.get(pairs.CHARACTER_PAIRS_FILE, 0),
            "relationship_labels": label_status,
            "dataset_card": dg.MetadataValue.md(release.card.split("---", 2)[-1]),
            "folder": dg.MetadataValue.path(release.folder),
        },
        check_results=[
            check(
                "released_only_calibrated",
                uncalibrated == 0,
                uncalibrated_pairs=uncalibrated,
                why=f"{uncalibrated} pairs released before calibration passed (include_uncalibrated)"
                if uncalibrated
                else None,
            )
        ],
    )


def _text_generator(context: dg.AssetExecutionContext, resource: RestorationLlmResource):
    """(the restoration LLM or None, a one-line status for the metadata)."""
    if not resource.is_configured():
        return (
            None,
            "not configured (RestorationLlmResource.backend is empty): the faithful renderer, one per shooting script",
        )
    generator, status = restore.load_generator(resource.load)
    if generator is None:
        context.log.warning(f"restoration LLM {status}")
    return generator, status


def _record(db: Catalog, store: ArtifactStore, prov: Provenance, shards: list, losses: list) -> None:
    """The asset's shards and losses replace what it wrote for the drama before."""
    rows = [
        ReleaseShard(
            drama_id=prov.drama_id, uri=store.uri_of(s.path), rows=s.rows, size_bytes=s.bytes, **prov.columns()
        )
        for s in shards
    ]
    db.replace_partition_rows(
        asset_key=prov.asset_key,
        partition=prov.drama_id,
        rows=[*rows, *loss_rows(losses, prov)],
        tables=[ReleaseShard, Loss],
    )

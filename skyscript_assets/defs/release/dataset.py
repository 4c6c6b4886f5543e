"""skyscript_dataset: the calibrated dramas' released pairs merged into one versioned dataset
(Parquet per drama named by its content hash, a manifest, a dataset card with the Table 2-style
statistics and plots), rewritten incrementally. Not partitioned: one dataset over all dramas,
outside the per-drama job (defs/platform/jobs.py). The work is stages.release.dataset."""

import time

import dagster as dg

from skyscript_assets.catalog import queries
from skyscript_assets.defs.platform.reporting import TABLE_ROWS, check
from skyscript_assets.defs.platform.resources import ArtifactsResource, CatalogResource
from skyscript_assets.ids import is_safe_segment
from skyscript_assets.stages.release.dataset import (
    CARD_FILE,
    MANIFEST_FILE,
    DramaSource,
    SourceShard,
    release_dataset,
    statistics_table,
    verify_dataset,
)
from skyscript_assets.stages.release.shards import pair_shards
from skyscript_assets.storage import ArtifactStore, full_uri, open_fs

DATASETS_FOLDER = "_datasets"  # <artifacts root>/_datasets/<name>; no drama id starts with "_"


class SkyscriptDatasetConfig(dg.Config):
    name: str = "skyscript"  # the dataset's folder name under <artifacts root>/_datasets/
    include_uncalibrated: bool = False  # also dramas released before their calibration passed
    rows_per_file: int = 50_000


def dataset_folder(store: ArtifactStore, name: str) -> tuple:
    """(the filesystem, the dataset's folder in it)."""
    if not is_safe_segment(name):
        raise ValueError(f"unsafe dataset name {name!r}")
    return store.fs, f"{open_fs(store.root_url)[1]}/{DATASETS_FOLDER}/{name}"


@dg.asset(
    deps=["script_pairs"],
    group_name="release",
    kinds={"python", "parquet"},
    description="The dataset: every calibrated drama's (script, shooting script) pairs merged into one versioned "
    "folder that datasets.load_dataset loads (Parquet per drama, named by drama id and content hash), a manifest "
    "and a dataset card with the Table 2-style statistics (dramas, episodes, shots, shooting scripts, scripts, "
    "average lengths) and plots of the shot-size, emotion, scene and highlight distributions. Incremental: only "
    "the dramas whose pairs changed are rewritten.",
    check_specs=[
        dg.AssetCheckSpec(
            "dataset_matches_manifest",
            asset="skyscript_dataset",
            description="Every file the manifest names is there with its size, and data/ holds no other file.",
        )
    ],
)
def skyscript_dataset(
    config: SkyscriptDatasetConfig, catalog: CatalogResource, artifacts: ArtifactsResource
) -> dg.MaterializeResult:
    db, store, started = catalog.get(), artifacts.get(), time.perf_counter()
    fs, folder = dataset_folder(store, config.name)
    statuses = queries.calibration_statuses(db)
    files = queries.release_shards_by_drama(db, "script_pairs")
    sources = []
    for drama_id in sorted(set(statuses) | set(files)):
        rows = files.get(drama_id, [])
        pairs = set(pair_shards(r.uri for r in rows))  # the pair shards, not the relationship tables
        shards = tuple(SourceShard(r.uri, r.rows, r.size_bytes, r.run_id) for r in rows if r.uri in pairs)
        sources.append(DramaSource(drama_id, shards, frozenset(statuses.get(drama_id, ()))))
    dataset = release_dataset(
        sources,
        fs,
        folder,
        name=config.name,
        include_uncalibrated=config.include_uncalibrated,
        rows_per_file=config.rows_per_file,
    )
    problems = verify_dataset(fs, folder)
    stats = dataset.stats
    return dg.MaterializeResult(
        metadata={
            "version": dataset.version,
            "dataset_hash": dataset.dataset_hash[:16],
            "dramas": len(dataset.dramas),
            "episodes": stats["episodes"],
            "shots": stats["shots"],
            "shooting_scripts": stats["shooting_scripts"],
            "pairs": dataset.pairs,
            "dramas_added": len(dataset.added),
            "dramas_updated": len(dataset.updated),
            "dramas_removed": len(dataset.removed),
            "dramas_unchanged": len(dataset.unchanged),
            "files_written": len(dataset.written),
            "files_deleted": len(dataset.deleted),
            "changes": dg.MetadataValue.md(_changes(dataset)),
            "statistics": dg.MetadataValue.md(statistics_table(stats)),
            "dataset_card": dg.MetadataValue.md(dataset.card_with_inline_plots()),
            "folder": dg.MetadataValue.path(full_uri(fs, folder)),
            "card": dg.MetadataValue.path(full_uri(fs, f"{folder}/{CARD_FILE}")),
            "manifest": dg.MetadataValue.path(full_uri(fs, f"{folder}/{MANIFEST_FILE}")),
            "seconds": round(time.perf_counter() - started, 2),
        },
        check_results=[
            check(
                "dataset_matches_manifest",
                not problems,
                severity="error",
                why="; ".join(problems[:5]) + (f" (+{len(problems) - 5})" if len(problems) > 5 else "")
                if problems
                else None,
                problems=len(problems),
            )
        ],
    )


def _changes(dataset) -> str:
    rows = [(d, "added") for d in dataset.added] + [(d, "updated") for d in dataset.updated]
    rows += [(d, "removed") for d in dataset.removed] + [(d, f"not released: {w}") for d, w in dataset.skipped.items()]
    if not rows:
        return f"No change: version {dataset.version}, {len(dataset.unchanged)} dramas as they were."
    lines = ["| drama | change |", "|---|---|"] + [f"| {d} | {c.replace('|', '/')} |" for d, c in rows[:TABLE_ROWS]]
    if len(rows) > TABLE_ROWS:
        lines.append(f"| ... | {len(rows) - TABLE_ROWS} more |")
    lines.append(f"\n{len(dataset.unchanged)} dramas unchanged (their files untouched).")
    return "\n".join(lines)


def dataset_lines(outcomes) -> list[str]:
    """Where the dataset is, for the CLI after a run (the runner's AssetOutcomes); [] when
    skyscript_dataset did not run."""
    for outcome in outcomes:
        if outcome.asset != "skyscript_dataset" or not outcome.ok:
            continue
        meta, folder = outcome.metadata, outcome.metadata.get("folder", "")
        if not meta.get("dramas"):
            return [f"\nDataset: {folder} (empty until a drama passes calibration; card {folder}/{CARD_FILE})"]
        dramas = f"{meta['dramas']} calibrated drama{'' if meta['dramas'] == 1 else 's'}"
        return [
            f"\nDataset: {folder}  version {meta['version']}, {dramas}, "
            f"{meta['pairs']} pairs (card with statistics and plots: {folder}/{CARD_FILE})",
            f"  python -c \"import datasets; print(datasets.load_dataset('{folder}', split='train'))\"",
        ]
    return []

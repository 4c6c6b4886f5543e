"""The release of one drama: (script, shooting script) pairs, relationships and the dataset card.

    release = release_drama(drama_id, scripts, restoration_shards, released_keyframes, fs, folder,
                            include_uncalibrated=False, labeller=None, loss_counts=counts)

Pairs stream from the restoration shards into the release shards (`<folder>/data/`). Only
a drama whose calibration passed is released, unless `include_uncalibrated`; the card and
the manifest of the pixelated keyframes are written either way.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import fsspec

from skyscript_assets.models.text_generation import TextGenerator
from skyscript_assets.schema import LossRecord, ShootingScript, released_script
from skyscript_assets.stages.release.loss_report import DramaCounts, label, tally_drama
from skyscript_assets.stages.release.relationships import STAGE as RELATIONSHIPS_STAGE
from skyscript_assets.stages.release.relationships import relationship_tables
from skyscript_assets.stages.release.shards import (
    PAIR_SCHEMA,
    PAIR_SHARD_FOLDER,
    RELATIONSHIP_FILES,
    ShardInfo,
    dataset_card,
    iter_shard_rows,
    pair_shards,
    write_parquet,
    write_shards,
)

STAGE_VERSION = "3"  # 2: the reviewers' replaced values (shots' `corrections`) are not released
# 3: each pair says how its restoration was decoded (`decoding`: greedy, sampled, rendered)
LICENCES = [
    "Source videos: their owners' licences, recorded per drama in drama.json `source`",
    "Annotations and scripts: as the dataset's publisher decides",
]
EDGES_FILE, CHARACTER_PAIRS_FILE = RELATIONSHIP_FILES


@dataclass(frozen=True)
class CalibratedScript:
    """A shooting script as the catalog holds it: parsed, as stored (released without the audit
    trail of the values reviewers replaced: `schema.released_script`), its Table 1 text and
    calibration status."""

    script: ShootingScript
    stored: dict
    text: str
    calibration_status: str

    @property
    def script_id(self) -> str:
        return self.script.script_id


def is_released(scripts: list[CalibratedScript], include_uncalibrated: bool) -> bool:
    """A drama is released once every shooting script passed calibration (or when asked to)."""
    return include_uncalibrated or {s.calibration_status for s in scripts} == {"passed"}


@dataclass
class Release:
    folder: str
    shards: list[ShardInfo]  # pair shards and relationship tables, for the catalog
    losses: list[LossRecord]
    pairs: int
    uncalibrated: int  # pairs released before calibration passed
    statuses: list[str]  # the calibration statuses of the drama's shooting scripts
    released_keyframes: int
    relationship_rows: dict[str, int] = field(default_factory=dict)
    card: str = ""
    labeller_id: str = ""  # the model that labelled the relationship edges ("" when none did)
    stage_version: str = STAGE_VERSION

    @property
    def pair_shards(self) -> list[str]:
        return pair_shards(s.path for s in self.shards)


def release_drama(
    drama_id: str,
    scripts: list[CalibratedScript],
    restoration_shards: list[str],
    released_keyframes: Mapping[str, list[str]],
    fs: fsspec.AbstractFileSystem,
    folder: str,
    *,
    include_uncalibrated: bool,
    rows_per_shard: int,
    labeller: TextGenerator | None,
    loss_counts: DramaCounts,
) -> Release:
    """Write the drama's release into `folder` (replaced). `labeller` labels relationship edges
    (None: unlabelled); `loss_counts` (the catalog's, before this release) gives the card's loss
    rates, with this release's relationship figures in place of the last one's."""
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    fs.makedirs(folder, exist_ok=True)  # the card is written even when nothing is released yet
    counts: Counter = Counter()
    released_scripts: set[str] = set()
    shards, losses, relationship_rows = [], [], {}
    if is_released(scripts, include_uncalibrated):
        rows = _pairs(scripts, iter_shard_rows(fs, restoration_shards), counts, released_scripts)
        shards = write_shards(
            rows, fs, f"{folder}/{PAIR_SHARD_FOLDER}", schema=PAIR_SCHEMA, rows_per_shard=rows_per_shard
        )
        edges, character_pairs, losses = relationship_tables(drama_id, [s.script for s in scripts], labeller)
        for path, table in zip(RELATIONSHIP_FILES, (edges, character_pairs)):
            shards.append(write_parquet(table, fs, f"{folder}/{path}", schema=RELATIONSHIP_FILES[path]))
            relationship_rows[path] = len(table)
    counts_now = _with_relationships(loss_counts, relationship_rows.get(EDGES_FILE, 0), len(losses), labeller)
    card = dataset_card(
        name=f"SkyScript pairs: {drama_id}",
        pairs=counts["pairs"],
        dramas=1 if counts["pairs"] else 0,
        shooting_scripts=len(released_scripts),
        shard_glob=f"{PAIR_SHARD_FOLDER}/*.parquet",
        loss_rates=card_loss_rates(counts_now),
        licences=LICENCES,
        relationship_rows=relationship_rows,
    )
    with fs.open(f"{folder}/README.md", "wb") as f:
        f.write(card.encode())
    with fs.open(f"{folder}/released_keyframes.json", "wb") as f:
        f.write(json.dumps({episode: sorted(uris) for episode, uris in released_keyframes.items()}, indent=2).encode())
    return Release(
        folder,
        shards,
        losses,
        counts["pairs"],
        counts["uncalibrated"],
        sorted({s.calibration_status for s in scripts}),
        sum(len(v) for v in released_keyframes.values()),
        relationship_rows,
        card,
        labeller.model_id if labeller is not None else "",
    )


def card_loss_rates(counts: DramaCounts) -> dict[str, float | str]:
    """The card's loss rate per stage: a rate, or why there is none ("not run: ...")."""
    return {
        label(t.stage): t.rate if t.rate is not None else t.rate_text()
        for t in tally_drama(counts)
        if t.rate is not None or t.not_run
    }


def _with_relationships(counts: DramaCounts, edges: int, lost: int, labeller: TextGenerator | None) -> DramaCounts:
    losses = {**counts.losses, RELATIONSHIPS_STAGE: lost}
    return dataclasses.replace(
        counts,
        losses=losses,
        relationship_edges=edges,
        relationship_labeller=labeller.model_id if labeller is not None else "",
    )


def _pair_fields(entry: CalibratedScript) -> dict:
    """The fields every pair of one shooting script shares."""
    script = entry.script
    scores = [s.highlight_score for s in script.shots if s.highlight_score is not None]
    return {
        "drama_id": script.drama_id,
        "episode_id": script.episode_id,
        "scene_number": script.scene_number,
        "shot_numbers": [s.shot_number for s in script.shots],
        "shooting_script_json": json.dumps(released_script(entry.stored)),  # reviewers' corrections, not the originals
        "shooting_script_text": entry.text,
        "highlight_score": sum(scores) / len(scores) if scores else None,
        "calibration_status": entry.calibration_status,
    }


def _pairs(
    scripts: list[CalibratedScript], restorations: Iterator[dict], counts: Counter, released_scripts: set[str]
) -> Iterator[dict]:
    """Pair rows streamed from the restorations; each scene's shared fields computed once."""
    shared = {entry.script_id: _pair_fields(entry) for entry in scripts}
    for restoration in restorations:
        fields = shared.get(restoration["script_id"])
        if fields is None:
            continue
        counts["pairs"] += 1
        counts["uncalibrated"] += fields["calibration_status"] != "passed"
        released_scripts.add(restoration["script_id"])
        yield {
            **fields,
            "pair_id": f"{restoration['script_id']}/r{restoration['restoration_index']:03d}",
            "restoration_index": restoration["restoration_index"],
            "style": restoration["style"],
            "script": restoration["script"],
            "model_id": restoration["model_id"],
            "seed": restoration.get("seed"),
            "decoding": restoration.get("decoding"),  # absent from restorations written before it was recorded
        }

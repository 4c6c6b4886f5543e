"""The dataset release: (script, shooting script) pairs as Parquet shards, and their card.

Shards are plain Parquet files that `datasets.load_dataset("parquet", data_files=...)`
loads; a billion pairs live in shards, never in database rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

PAIR_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("drama_id", pa.string()),
        ("episode_id", pa.string()),
        ("scene_number", pa.int32()),
        ("shot_numbers", pa.list_(pa.int32())),
        ("restoration_index", pa.int32()),
        ("style", pa.string()),
        ("script", pa.string()),  # Fountain screenplay
        ("shooting_script_json", pa.string()),
        ("shooting_script_text", pa.string()),
        ("highlight_score", pa.float32()),
        ("calibration_status", pa.string()),
        ("model_id", pa.string()),
        ("seed", pa.int64()),  # the sampling seed of the restoration's request; null for the faithful rendering
        ("decoding", pa.string()),  # greedy, sampled (by the LLM) or rendered (the faithful renderer); null before v2
    ]
)
RESTORATION_SCHEMA = pa.schema(
    [
        ("script_id", pa.string()),
        ("restoration_index", pa.int32()),
        ("style", pa.string()),  # "faithful", or "genre=... tone=... length=... language=..."
        ("script", pa.string()),
        ("model_id", pa.string()),
        ("seed", pa.int64()),
        ("decoding", pa.string()),  # greedy, sampled or rendered (restore.RENDERED)
    ]
)
# The time-varying relationship graph: one row per character pair, episode and scene they share.
RELATIONSHIP_EDGE_SCHEMA = pa.schema(
    [
        ("drama_id", pa.string()),
        ("episode_id", pa.string()),
        ("scene_number", pa.int32()),
        ("character_a", pa.string()),
        ("character_b", pa.string()),
        ("name_a", pa.string()),
        ("name_b", pa.string()),
        ("shots_together", pa.int32()),
        ("mean_distance_cm", pa.float32()),
        ("mean_valence_together", pa.float32()),
        ("replies_a_to_b", pa.int32()),  # a speaks right after b
        ("replies_b_to_a", pa.int32()),
        ("label", pa.string()),  # a short relationship label from the LLM; null without one
        ("label_model_id", pa.string()),
    ]
)
# Per character pair of the drama: the pairing ("shipping") compatibility score.
CHARACTER_PAIR_SCHEMA = pa.schema(
    [
        ("drama_id", pa.string()),
        ("character_a", pa.string()),
        ("character_b", pa.string()),
        ("name_a", pa.string()),
        ("name_b", pa.string()),
        ("temperament_a", pa.string()),
        ("temperament_b", pa.string()),
        ("facial_attractiveness_a", pa.float32()),
        ("facial_attractiveness_b", pa.float32()),
        ("compatibility", pa.float32()),  # 0..1; null when an attractiveness is unknown
        ("scenes_together", pa.int32()),
        ("shots_together", pa.int32()),
    ]
)
RELATIONSHIP_FILES = {
    "relationships/relationship_edges.parquet": RELATIONSHIP_EDGE_SCHEMA,
    "relationships/character_pairs.parquet": CHARACTER_PAIR_SCHEMA,
}
DEFAULT_ROWS_PER_SHARD = 50_000


def iter_shard_rows(fs: fsspec.AbstractFileSystem, paths: list[str], batch_size: int = 1024) -> Iterator[dict]:
    """The rows of the shards in order, one record batch in memory at a time."""
    for path in paths:
        with fs.open(path, "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size):
                yield from batch.to_pylist()


@dataclass(frozen=True)
class ShardInfo:
    path: str
    rows: int
    bytes: int


def write_shards(
    rows: Iterable[dict],
    fs: fsspec.AbstractFileSystem,
    folder: str,
    *,
    schema: pa.Schema = PAIR_SCHEMA,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    prefix: str = "part",
) -> list[ShardInfo]:
    """Write `rows` as `folder/prefix-00000.parquet`, ... (zstd); deterministic for equal input.

    Each shard is written to a temporary name and moved into place, so a reader never sees
    half a shard and a killed writer leaves no file that looks complete."""
    fs.makedirs(folder, exist_ok=True)
    shards = []
    for number, batch in enumerate(_batches(rows, rows_per_shard)):
        path = f"{folder.rstrip('/')}/{prefix}-{number:05d}.parquet"
        shards.append(write_parquet(batch, fs, path, schema=schema))
    return shards


def write_parquet(rows: list[dict], fs: fsspec.AbstractFileSystem, path: str, *, schema: pa.Schema) -> ShardInfo:
    """One Parquet file (zstd), written under a temporary name and moved into place; an empty
    `rows` still writes the file, so readers find the table and its columns."""
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)
    with fs.open(path + ".tmp", "wb") as f:
        pq.write_table(table, f, compression="zstd")
    fs.mv(path + ".tmp", path)
    return ShardInfo(path=path, rows=table.num_rows, bytes=int(fs.size(path)))


def _batches(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def dataset_card(
    *,
    name: str,
    pairs: int,
    dramas: int,
    shooting_scripts: int,
    shard_glob: str,
    loss_rates: dict[str, float | str],
    licences: list[str],
    relationship_rows: dict[str, int] | None = None,
) -> str:
    """A Hugging Face dataset card (YAML front matter + Markdown). `loss_rates` gives a rate per
    stage, or the text that stands for one (a stage that did not run is "not run", never 0 %);
    `relationship_rows` the row count of each file of RELATIONSHIP_FILES written beside the shards."""
    fields = "\n".join(f"| `{f.name}` | {f.type} |" for f in PAIR_SCHEMA)
    relationship_rows = relationship_rows or {}
    extra_configs = "".join(
        f'- config_name: {PurePosixPath(path).stem}\n  data_files: "{path}"\n' for path in relationship_rows
    )
    relationships = "\n".join(
        f"| `{path}` | {rows} | {', '.join(f'`{f.name}`' for f in RELATIONSHIP_FILES[path])} |"
        for path, rows in relationship_rows.items()
    )
    relationship_section = (
        f"""
## Relationships

Implicit character relationships, per episode and scene (co-presence, 3D distance, valence
together, who answers whom, an LLM label where one was configured), and per character pair
the compatibility score from temperament and facial attractiveness.

| file | rows | fields |
|---|---:|---|
{relationships}
"""
        if relationship_rows
        else ""
    )
    losses = (
        "\n".join(
            f"| {stage} | {rate if isinstance(rate, str) else f'{rate:.2%}'} |"
            for stage, rate in sorted(loss_rates.items())
        )
        or "| (none) | |"
    )
    licence_lines = "\n".join(f"- {licence}" for licence in licences) or "- see the source videos' licences"
    return f"""---
configs:
- config_name: default
  data_files: "{shard_glob}"
{extra_configs}task_categories:
- text-generation
tags:
- screenplay
- video
- skyscript
---
# {name}

Pairs of a **script** (a screenplay in Fountain form) and the **shooting script** it was
restored from, built by the SkyScript factory (method of SkyScript-100M, arXiv 2408.09333).

| count | value |
|---|---|
| dramas | {dramas} |
| shooting scripts | {shooting_scripts} |
| pairs | {pairs} |

## Fields

| field | type |
|---|---|
{fields}
{relationship_section}
## Loss rates by stage

| stage | loss rate |
|---|---|
{losses}

## Licences

{licence_lines}

Keyframes in this release are pixelated copies (faces and on-screen names mosaicked).

```python
from datasets import load_dataset
pairs = load_dataset("parquet", data_files="{shard_glob}")
```
"""


# --- exports of a release (`skyscript export`) ----------------------------------------------

PAIR_SHARD_FOLDER = "data"  # the pair shards sit in <release>/data/; relationships in <release>/relationships/


def pair_shards(uris: Iterable[str]) -> list[str]:
    """The pair shards among a release's files, in order."""
    return sorted(u for u in uris if u.rstrip("/").rsplit("/", 2)[-2:-1] == [PAIR_SHARD_FOLDER])


def fountain_file_name(pair_id: str, taken: set[str]) -> str:
    """A safe, unique file name for a pair's screenplay: `ep01__scene-0003__r007.fountain`
    (the drama id, the first part, is the folder's business, not the file's)."""
    parts = pair_id.split("/")[1:] or pair_id.split("/")
    stem = "__".join(re.sub(r"[^\w.-]+", "_", part).strip("._") or "_" for part in parts)[:200]
    name, number = f"{stem}.fountain", 1
    while name in taken:  # two ids that differ only in unsafe characters
        number += 1
        name = f"{stem}-{number}.fountain"
    taken.add(name)
    return name


def export_jsonl(fs: fsspec.AbstractFileSystem, shards: list[str], path: Path) -> int:
    """One JSON object per pair, written to a temporary name and moved into place."""
    count = 0
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for row in iter_shard_rows(fs, shards):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


def export_fountain(fs: fsspec.AbstractFileSystem, shards: list[str], folder: Path) -> int:
    """One `.fountain` file per restoration, named from the pair id."""
    taken: set[str] = set()
    count = 0
    for row in iter_shard_rows(fs, shards):
        (folder / fountain_file_name(row["pair_id"], taken)).write_text(row["script"], encoding="utf-8")
        count += 1
    return count


def export_parquet(fs: fsspec.AbstractFileSystem, release_folder: str, folder: Path) -> int:
    """The release folder as it is: pair shards, dataset card, relationships, keyframe manifest.
    Returns the number of files copied."""
    root = release_folder.rstrip("/")
    files = [f for f in fs.find(root) if not f.endswith(".tmp")]
    for remote in files:
        local = folder / remote[len(root) + 1 :]
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(remote, str(local))
    return len(files)

"""The dataset release: (script, shooting script) pairs as Parquet shards, and their card.

Shards are plain Parquet files that `datasets.load_dataset("parquet", data_files=...)`
loads; a billion pairs live in shards, never in database rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

PAIR_SCHEMA = pa.schema([
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
])
RESTORATION_SCHEMA = pa.schema([
    ("script_id", pa.string()),
    ("restoration_index", pa.int32()),
    ("style", pa.string()),
    ("script", pa.string()),
    ("model_id", pa.string()),
])
DEFAULT_ROWS_PER_SHARD = 50_000


def read_shards(fs: fsspec.AbstractFileSystem, paths: list[str]) -> list[dict]:
    rows: list[dict] = []
    for path in paths:
        with fs.open(path, "rb") as f:
            rows.extend(pq.read_table(f).to_pylist())
    return rows


@dataclass(frozen=True)
class ShardInfo:
    path: str
    rows: int
    bytes: int


def write_shards(rows: Iterable[dict], fs: fsspec.AbstractFileSystem, folder: str, *,
                 schema: pa.Schema = PAIR_SCHEMA, rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
                 prefix: str = "part") -> list[ShardInfo]:
    """Write `rows` as `folder/prefix-00000.parquet`, ... (zstd); deterministic for equal input.

    Each shard is written to a temporary name and moved into place, so a reader never sees
    half a shard and a killed writer leaves no file that looks complete."""
    fs.makedirs(folder, exist_ok=True)
    shards = []
    for number, batch in enumerate(_batches(rows, rows_per_shard)):
        table = pa.Table.from_pylist(batch, schema=schema)
        path = f"{folder.rstrip('/')}/{prefix}-{number:05d}.parquet"
        with fs.open(path + ".tmp", "wb") as f:
            pq.write_table(table, f, compression="zstd")
        fs.mv(path + ".tmp", path)
        shards.append(ShardInfo(path=path, rows=table.num_rows, bytes=int(fs.size(path))))
    return shards


def _batches(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def dataset_card(*, name: str, pairs: int, dramas: int, shooting_scripts: int, shard_glob: str,
                 loss_rates: dict[str, float], licences: list[str]) -> str:
    """A Hugging Face dataset card (YAML front matter + Markdown)."""
    fields = "\n".join(f"| `{f.name}` | {f.type} |" for f in PAIR_SCHEMA)
    losses = "\n".join(f"| {stage} | {rate:.2%} |" for stage, rate in sorted(loss_rates.items())) or "| (none) | |"
    licence_lines = "\n".join(f"- {licence}" for licence in licences) or "- see the source videos' licences"
    return f"""---
configs:
- config_name: default
  data_files: "{shard_glob}"
task_categories:
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

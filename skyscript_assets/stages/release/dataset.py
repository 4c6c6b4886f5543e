"""The dataset-level release: the calibrated dramas' pairs merged into one versioned dataset.

    sources = [DramaSource("drama-a", (SourceShard(uri, rows, size, run_id), ...), frozenset({"passed"})), ...]
    dataset = release_dataset(sources, fs, folder, name="skyscript")

The folder loads with `datasets.load_dataset(folder)` (the card's YAML names the data files)
or `datasets.load_dataset("parquet", data_files=f"{folder}/data/*.parquet")`:

    README.md        the dataset card: version, Table 2-style statistics, the plots, the fields
    manifest.json    version and history; per drama its files, content hash, source fingerprint
                     and statistics (so unchanged dramas are never read again)
    data/<drama>-<hash>-00000.parquet   one drama's pairs (PAIR_SCHEMA), its content hash in the name
    plots/*.png      shot sizes, emotions, scenes, highlight scores (Pillow bar charts)

Incremental: a drama's source shards (its script_pairs release) are fingerprinted from what the
catalog says of them (uri, rows, bytes, the run that wrote them). An unchanged fingerprint keeps
the drama's files and statistics without reading a byte; a changed one is hashed (the shards'
bytes): an unchanged content hash still keeps the files, a new one writes the drama's files
under the new hash and removes the old ones once the manifest names the new. A drama no longer
released (calibration not passed, no pairs) leaves the dataset. The version goes up by one when
the set of (drama, content hash) changes; card, plots and manifest are rewritten only when their
bytes change.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime

import fsspec
import pyarrow as pa

from skyscript_assets.stages.release.plots import bar_chart
from skyscript_assets.stages.release.shards import (
    DEFAULT_ROWS_PER_SHARD,
    PAIR_SCHEMA,
    iter_shard_rows,
    write_shards,
)

STAGE = "skyscript_dataset"
FORMAT = "1"  # layout, pair schema handling and statistics; a new format rewrites every drama
DATA_FOLDER, PLOTS_FOLDER = "data", "plots"
MANIFEST_FILE, CARD_FILE = "manifest.json", "README.md"
HIGHLIGHT_BINS = 10
TOP = 15  # bars per distribution plot (the rest summed as "other")
CARD_DRAMA_ROWS = 100  # dramas listed in the card (all of them in the manifest)
HISTORY = 100  # versions kept in the manifest's history
PLOTS = {  # file -> (statistic, title, unit, the table's heading)
    "shot_sizes.png": ("shot_sizes", "Shot sizes", "shots", "shot size"),
    "emotions.png": ("emotions", "Emotions of the characters", "appearances", "emotion"),
    "scenes.png": ("scenes", "Scenes (locations)", "shooting scripts", "scene"),
    "highlight.png": ("highlight", "Highlight scores", "shots", "highlight score"),
}
COUNTERS = ("shot_sizes", "emotions", "scenes", "times_of_day")


@dataclass(frozen=True)
class SourceShard:
    """A pair shard of a drama's script_pairs release, as the catalog lists it."""

    uri: str
    rows: int
    bytes: int
    written_by: str = ""  # the run that wrote it


@dataclass(frozen=True)
class DramaSource:
    drama_id: str
    shards: tuple[SourceShard, ...]
    statuses: frozenset[str]  # the calibration statuses of its shooting scripts

    def fingerprint(self) -> str:
        """Changes when the catalog's record of the shards does (a new run, other sizes)."""
        return _sha([FORMAT, str(PAIR_SCHEMA), [astuple(s) for s in self.shards]])

    def why_not_released(self, include_uncalibrated: bool) -> str | None:
        if not include_uncalibrated and self.statuses != {"passed"}:
            return f"calibration not passed (statuses: {', '.join(sorted(self.statuses)) or 'none'})"
        if not sum(s.rows for s in self.shards):
            return "no released pairs (script_pairs wrote none)"
        return None


@dataclass
class DatasetRelease:
    folder: str
    name: str
    version: int
    dataset_hash: str
    stats: dict
    card: str
    plots: dict[str, bytes]  # file name in plots/ -> PNG
    dramas: list[str]
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # drama -> why it is not (re)released
    written: list[str] = field(default_factory=list)  # paths written by this release
    deleted: list[str] = field(default_factory=list)  # paths removed by this release

    @property
    def pairs(self) -> int:
        return self.stats.get("scripts", 0)

    def card_with_inline_plots(self) -> str:
        """The card's body (no YAML header) with its plots as data: URIs, for the Dagster UI."""
        body = self.card.split("---", 2)[-1]
        for name, png in self.plots.items():
            body = body.replace(
                f"({PLOTS_FOLDER}/{name})", f"(data:image/png;base64,{base64.b64encode(png).decode()})"
            )
        return body


# --- statistics ---------------------------------------------------------------------------


def empty_stats() -> dict:
    return {
        "dramas": 0,
        "episodes": 0,
        "shots": 0,
        "shooting_scripts": 0,
        "scripts": 0,
        "script_words": 0,
        "shooting_script_words": 0,
        "shot_seconds": 0.0,
        "lines": 0,
        "character_appearances": 0,
        "interior": 0,
        "exterior": 0,
        **{name: {} for name in COUNTERS},
        "highlight": [0] * HIGHLIGHT_BINS,
        "highlight_unscored": 0,
    }


def merge_stats(totals: dict, more: dict) -> dict:
    """`totals` plus `more` (both as `empty_stats` lays them out); a new dict."""
    merged = empty_stats()
    for key, value in merged.items():
        a, b = totals.get(key, value), more.get(key, value)
        if isinstance(value, dict):
            merged[key] = dict(Counter(a) + Counter(b))
        elif isinstance(value, list):
            merged[key] = [x + y for x, y in zip(a, b)]
        else:
            merged[key] = a + b
    return merged


class DramaTally:
    """One drama's statistics, fed its pair rows one at a time (each shooting script counted once)."""

    def __init__(self):
        self.stats = empty_stats()
        self.stats["dramas"] = 1
        self._scripts: set[tuple[str, int]] = set()
        self._episodes: set[str] = set()
        self._counters = {name: Counter() for name in COUNTERS}

    def add(self, row: dict) -> None:
        s = self.stats
        s["scripts"] += 1
        s["script_words"] += len((row.get("script") or "").split())
        key = (row["episode_id"], row["scene_number"])
        if key in self._scripts:
            return
        self._scripts.add(key)
        self._episodes.add(row["episode_id"])
        s["shooting_scripts"] += 1
        s["shooting_script_words"] += len((row.get("shooting_script_text") or "").split())
        script = json.loads(row.get("shooting_script_json") or "{}")
        if script.get("interior") is True:
            s["interior"] += 1
        elif script.get("interior") is False:
            s["exterior"] += 1
        self._counters["scenes"][_word(script.get("location"))] += 1
        self._counters["times_of_day"][_word(script.get("time_of_day"))] += 1
        for shot in script.get("shots") or []:
            s["shots"] += 1
            s["shot_seconds"] += max(0.0, float(shot.get("end_s") or 0) - float(shot.get("start_s") or 0))
            self._counters["shot_sizes"][_word(shot.get("shot_size"))] += 1
            score = shot.get("highlight_score")
            if isinstance(score, (int, float)):
                s["highlight"][min(HIGHLIGHT_BINS - 1, max(0, int(float(score) * HIGHLIGHT_BINS)))] += 1
            else:
                s["highlight_unscored"] += 1
            for character in shot.get("characters") or []:
                s["character_appearances"] += 1
                if character.get("emotion"):
                    self._counters["emotions"][_word(character["emotion"])] += 1
                if str(character.get("line") or "").strip():
                    s["lines"] += 1

    def result(self) -> dict:
        self.stats["episodes"] = len(self._episodes)
        self.stats["shot_seconds"] = round(self.stats["shot_seconds"], 3)
        for name, counter in self._counters.items():
            self.stats[name] = dict(sorted(counter.items()))
        return self.stats


def _word(value) -> str:
    text = re.sub(r"\s+", " ", str(value or "").replace("_", " ")).strip().lower()
    return text or "unknown"


def averages(stats: dict) -> dict[str, float | None]:
    def ratio(a: str, b: str) -> float | None:
        return round(stats[a] / stats[b], 2) if stats.get(b) else None

    return {
        "episodes per drama": ratio("episodes", "dramas"),
        "shooting scripts per episode": ratio("shooting_scripts", "episodes"),
        "shots per shooting script": ratio("shots", "shooting_scripts"),
        "scripts (restorations) per shooting script": ratio("scripts", "shooting_scripts"),
        "shot length (seconds)": ratio("shot_seconds", "shots"),
        "shooting script length (words)": ratio("shooting_script_words", "shooting_scripts"),
        "script length (words)": ratio("script_words", "scripts"),
        "dialogue lines per shooting script": ratio("lines", "shooting_scripts"),
        "characters per shot": ratio("character_appearances", "shots"),
    }


def distribution(stats: dict, name: str, top: int = TOP) -> list[tuple[str, int]]:
    """(label, count) bars of one distribution, largest first; the tail summed as "other"."""
    if name == "highlight":
        width = 1 / HIGHLIGHT_BINS
        return [(f"{i * width:.1f}-{(i + 1) * width:.1f}", n) for i, n in enumerate(stats["highlight"])]
    items = sorted(stats[name].items(), key=lambda kv: (-kv[1], kv[0]))
    if len(items) > top:
        items = items[: top - 1] + [("other", sum(n for _, n in items[top - 1 :]))]
    return items


def plots(stats: dict) -> dict[str, bytes]:
    return {
        file: bar_chart(title, distribution(stats, key), unit=unit) for file, (key, title, unit, _) in PLOTS.items()
    }


# --- the release --------------------------------------------------------------------------


def release_dataset(
    sources: Iterable[DramaSource],
    fs: fsspec.AbstractFileSystem,
    folder: str,
    *,
    name: str,
    include_uncalibrated: bool = False,
    rows_per_file: int = DEFAULT_ROWS_PER_SHARD,
    now: datetime | None = None,
) -> DatasetRelease:
    """Bring the dataset in `folder` up to date with `sources` (every drama the catalog knows),
    touching only what changed; see the module's docstring."""
    folder = folder.rstrip("/")
    old = _read_manifest(fs, folder)
    before: dict[str, dict] = old.get("dramas", {}) if old.get("format") == FORMAT else {}
    result = DatasetRelease(folder, name, 0, "", {}, "", {}, [])
    entries: dict[str, dict] = {}
    for source in sorted(sources, key=lambda s: s.drama_id):
        entry = _drama_entry(
            source, before.get(source.drama_id), fs, folder, include_uncalibrated, rows_per_file, result
        )
        if entry is not None:
            entries[source.drama_id] = entry
    result.removed = sorted(set(before) - set(entries))
    result.dramas = sorted(entries)

    dataset_hash = _sha([FORMAT, sorted((d, e["content_hash"]) for d, e in entries.items())])
    changed = dataset_hash != old.get("dataset_hash")
    version = int(old.get("version", 0)) + 1 if changed else int(old.get("version", 0))
    history = list(old.get("history", []))
    if changed:
        history.append(
            {
                "version": version,
                "dataset_hash": dataset_hash,
                "written_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
                "dramas": len(entries),
                "pairs": sum(e["stats"]["scripts"] for e in entries.values()),
                "added": result.added,
                "updated": result.updated,
                "removed": result.removed,
            }
        )
    history = history[-HISTORY:]
    stats = empty_stats()
    for entry in entries.values():
        stats = merge_stats(stats, entry["stats"])
    result.version, result.dataset_hash, result.stats = version, dataset_hash, stats
    result.plots = plots(stats)
    result.card = dataset_card(name, version, dataset_hash, stats, entries, history)

    for file, png in result.plots.items():
        _write_if_changed(fs, f"{folder}/{PLOTS_FOLDER}/{file}", png, result)
    _write_if_changed(fs, f"{folder}/{CARD_FILE}", result.card.encode(), result)
    manifest = {
        "name": name,
        "format": FORMAT,
        "version": version,
        "dataset_hash": dataset_hash,
        "pair_fields": [f.name for f in PAIR_SCHEMA],
        "stats": stats,
        "dramas": entries,
        "history": history,
    }
    # the manifest last: until it names the new files, the old ones stay where they were
    _write_if_changed(fs, f"{folder}/{MANIFEST_FILE}", json.dumps(manifest, indent=1, sort_keys=True).encode(), result)
    _remove_unlisted(fs, folder, entries, result)
    return result


def _drama_entry(
    source: DramaSource,
    before: dict | None,
    fs,
    folder: str,
    include_uncalibrated: bool,
    rows_per_file: int,
    result: DatasetRelease,
) -> dict | None:
    """The drama's manifest entry: kept, rewritten, or None when it is not released."""
    drama_id = source.drama_id
    why = source.why_not_released(include_uncalibrated)
    if why is not None:
        result.skipped[drama_id] = why
        return None
    fingerprint = source.fingerprint()
    present = before is not None and _files_present(fs, folder, before["files"])
    if present and before["fingerprint"] == fingerprint:
        result.unchanged.append(drama_id)
        return before
    try:
        content_hash = _content_hash(fs, source)
        if present and before["content_hash"] == content_hash:
            result.unchanged.append(drama_id)  # re-released with the same bytes: nothing to write
            return {**before, "fingerprint": fingerprint}
        entry = _write_drama(fs, folder, source, fingerprint, content_hash, rows_per_file)
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:  # a shard gone or unreadable
        kept = " (its previous files are kept)" if present else ""
        result.skipped[drama_id] = f"not read: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}{kept}"
        return before if present else None
    result.written += [f"{folder}/{f['path']}" for f in entry["files"]]
    (result.updated if before is not None else result.added).append(drama_id)
    return entry


def _write_drama(
    fs, folder: str, source: DramaSource, fingerprint: str, content_hash: str, rows_per_file: int
) -> dict:
    tally = DramaTally()

    def rows():
        for row in iter_shard_rows(fs, [s.uri for s in source.shards]):
            tally.add(row)
            yield row  # columns PAIR_SCHEMA lacks are dropped, those an older release lacks are null

    stem = f"{source.drama_id}-{content_hash[:16]}"
    try:
        shards = write_shards(
            rows(), fs, f"{folder}/{DATA_FOLDER}", schema=PAIR_SCHEMA, rows_per_shard=rows_per_file, prefix=stem
        )
    except BaseException:
        for path in fs.glob(f"{folder}/{DATA_FOLDER}/{stem}-*"):
            fs.rm(path)
        raise
    return {
        "content_hash": content_hash,
        "fingerprint": fingerprint,
        "files": [
            {"path": f"{DATA_FOLDER}/{s.path.rsplit('/', 1)[-1]}", "rows": s.rows, "bytes": s.bytes} for s in shards
        ],
        "stats": tally.result(),
    }


def _content_hash(fs, source: DramaSource) -> str:
    digest = hashlib.sha256(f"{FORMAT}\x1f{PAIR_SCHEMA}".encode())
    for shard in source.shards:
        with fs.open(shard.uri, "rb") as f:
            while chunk := f.read(8 << 20):
                digest.update(chunk)
        digest.update(b"\x1e")
    return digest.hexdigest()


def _files_present(fs, folder: str, files: list[dict]) -> bool:
    try:
        return all(fs.size(f"{folder}/{f['path']}") == f["bytes"] for f in files)
    except FileNotFoundError:
        return False


def _write_if_changed(fs, path: str, data: bytes, result: DatasetRelease) -> None:
    """Write `path` (tmp + move) unless it already holds exactly `data`."""
    try:
        if fs.size(path) == len(data):
            with fs.open(path, "rb") as f:
                if f.read() == data:
                    return
    except FileNotFoundError:
        pass
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path + ".tmp", "wb") as f:
        f.write(data)
    fs.mv(path + ".tmp", path)
    result.written.append(path)


def _remove_unlisted(fs, folder: str, entries: dict[str, dict], result: DatasetRelease) -> None:
    """Files in data/ and plots/ that the manifest no longer names (replaced, removed, left by a crash)."""
    keep = {f"{folder}/{f['path']}" for e in entries.values() for f in e["files"]}
    keep |= {f"{folder}/{PLOTS_FOLDER}/{file}" for file in PLOTS}
    for sub in (DATA_FOLDER, PLOTS_FOLDER):
        for path in sorted(fs.find(f"{folder}/{sub}")) if fs.exists(f"{folder}/{sub}") else []:
            if path.rstrip("/") not in keep:
                fs.rm(path)
                result.deleted.append(path)


def _read_manifest(fs, folder: str) -> dict:
    """The manifest, or {} when there is none or it cannot be read (everything is rewritten)."""
    try:
        with fs.open(f"{folder}/{MANIFEST_FILE}", "rb") as f:
            manifest = json.loads(f.read())
    except (FileNotFoundError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def verify_dataset(fs, folder: str) -> list[str]:
    """Problems with the dataset in `folder`: a file the manifest names missing or of another
    size, a Parquet file in data/ it does not name. [] when the folder is what the manifest says."""
    folder = folder.rstrip("/")
    manifest = _read_manifest(fs, folder)
    if not manifest:
        return [f"no readable {MANIFEST_FILE}"]
    listed = {f"{folder}/{f['path']}": f["bytes"] for e in manifest.get("dramas", {}).values() for f in e["files"]}
    data = f"{folder}/{DATA_FOLDER}"
    found = {i["name"].rstrip("/"): i["size"] for i in fs.ls(data, detail=True)} if fs.exists(data) else {}
    problems = [f"missing: {p}" for p in sorted(set(listed) - set(found))]
    problems += [f"size differs: {p}" for p in sorted(set(listed) & set(found)) if listed[p] != found[p]]
    problems += [f"not in the manifest: {p}" for p in sorted(set(found) - set(listed))]
    return problems


def _sha(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


# --- the card -----------------------------------------------------------------------------


def size_category(rows: int) -> str:
    for bound, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ):
        if rows < bound:
            return label
    return "1B<n<10B"


def statistics_table(stats: dict) -> str:
    """Table 2 of the paper, for this release: counts, then averages."""
    counts = [
        ("dramas", stats["dramas"]),
        ("episodes", stats["episodes"]),
        ("shots", stats["shots"]),
        ("shooting scripts", stats["shooting_scripts"]),
        ("scripts (restorations, one pair each)", stats["scripts"]),
        ("hours of video in the shots", round(stats["shot_seconds"] / 3600, 3)),
        ("dialogue lines", stats["lines"]),
        (
            "interior / exterior / unknown scenes",
            f"{stats['interior']} / {stats['exterior']} / "
            f"{stats['shooting_scripts'] - stats['interior'] - stats['exterior']}",
        ),
    ]
    lines = ["| statistic | value |", "|---|---:|"]
    lines += [
        f"| {label} | {value:,} |" if isinstance(value, int) else f"| {label} | {value} |" for label, value in counts
    ]
    lines += [f"| average {label} | {'-' if value is None else value} |" for label, value in averages(stats).items()]
    return "\n".join(lines)


def distribution_table(stats: dict, key: str, heading: str) -> str:
    bars = distribution(stats, key)
    total = sum(n for _, n in bars)
    lines = [f"| {heading} | count | share |", "|---|---:|---:|"]
    lines += [f"| {label} | {n:,} | {n / total:.1%} |" for label, n in bars] if total else ["| (none) | 0 | - |"]
    return "\n".join(lines)


def dataset_card(
    name: str, version: int, dataset_hash: str, stats: dict, entries: dict[str, dict], history: list[dict]
) -> str:
    """The Hugging Face dataset card (YAML front matter + Markdown)."""
    fields = "\n".join(f"| `{f.name}` | {f.type} |" for f in PAIR_SCHEMA)
    sections = []
    for file, (key, title, _, heading) in PLOTS.items():
        unscored = (
            f"\n\n{stats['highlight_unscored']:,} shots have no highlight score."
            if key == "highlight" and stats["highlight_unscored"]
            else ""
        )
        sections.append(
            f"### {title}\n\n![{title}]({PLOTS_FOLDER}/{file})\n\n{distribution_table(stats, key, heading)}{unscored}"
        )
    drama_rows = [
        f"| {d} | {e['stats']['episodes']} | {e['stats']['shooting_scripts']} | {e['stats']['scripts']:,} "
        f"| {len(e['files'])} | `{e['content_hash'][:16]}` |"
        for d, e in list(entries.items())[:CARD_DRAMA_ROWS]
    ]
    more = (
        f"\n\n... and {len(entries) - CARD_DRAMA_ROWS} more dramas: see `{MANIFEST_FILE}`."
        if len(entries) > CARD_DRAMA_ROWS
        else ""
    )
    versions = "\n".join(
        f"| {h['version']} | {h['written_at']} | {h['dramas']} | {h['pairs']:,} | "
        f"{_names(h['added'])} | {_names(h['updated'])} | {_names(h['removed'])} |"
        for h in reversed(history[-10:])
    )
    released = history[-1]["written_at"] if history else "-"
    empty = "\n**No drama is released yet**: the dataset has no data files.\n" if not entries else ""
    return f"""---
pretty_name: {name}
configs:
- config_name: default
  data_files:
  - split: train
    path: "{DATA_FOLDER}/*.parquet"
task_categories:
- text-generation
size_categories:
- {size_category(stats["scripts"])}
tags:
- screenplay
- video
- skyscript
---
# {name}, version {version}

Pairs of a **script** (a screenplay in Fountain form) and the **shooting script** it was
restored from, for every drama whose calibration passed, built by the SkyScript factory
(the method of SkyScript-100M, arXiv 2408.09333). Version {version}, released {released};
dataset hash `{dataset_hash[:16]}`.
{empty}
## Statistics

{statistics_table(stats)}

## Distributions

{chr(10).join(s + chr(10) for s in sections)}
## Dramas

| drama | episodes | shooting scripts | pairs | files | content hash |
|---|---:|---:|---:|---:|---|
{chr(10).join(drama_rows) or "| (none) | | | | | |"}{more}

Each drama's pairs are in `{DATA_FOLDER}/<drama>-<content hash>-<n>.parquet`; a new version rewrites
only the dramas whose pairs changed. `{MANIFEST_FILE}` lists every file with its rows and bytes, each
drama's statistics and the version history.

## Fields

| field | type |
|---|---|
{fields}

## Loading

```python
from datasets import load_dataset
pairs = load_dataset("path/to/this/folder", split="train")
# or: load_dataset("parquet", data_files="path/to/this/folder/{DATA_FOLDER}/*.parquet", split="train")
```

## Versions

| version | written | dramas | pairs | added | updated | removed |
|---:|---|---:|---:|---|---|---|
{versions or "| - | | | | | | |"}
"""


def _names(dramas: list[str], limit: int = 5) -> str:
    shown = ", ".join(dramas[:limit])
    return (shown + f" (+{len(dramas) - limit})" if len(dramas) > limit else shown) or "-"

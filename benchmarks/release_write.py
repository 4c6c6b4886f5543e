"""Writing the release at scale: 1 M generated (script, shooting script) pairs as Parquet shards.

Measures the throughput of `stages.release.write_shards` (the writer `script_pairs` uses) in MB/s
of pair data (the UTF-8 bytes of every field), its peak memory after the first shards and at the
end (flat: it holds one shard at a time), and against a baseline measured in the same run:
the same rows written as JSON lines. Then `datasets.load_dataset("parquet", ...)` loads the shards
and the row count is checked.

    python benchmarks/release_write.py                  # 1 M pairs (about 4 GB of text)
    python benchmarks/release_write.py --pairs 100000   # a quicker look

Shape of a generated pair: a two-shot scene with two characters, as the pipeline writes it
(shooting script JSON ~2 KB, its Table 1 text, a Fountain restoration with a varied beat).
"""

import argparse
import json
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

import fsspec

from skyscript_assets.schema import CharacterInShot, ContinuousEmotion, ShootingScript, ShotScript
from skyscript_assets.stages.release.fountain import render_fountain
from skyscript_assets.stages.release.shards import PAIR_SCHEMA, write_shards
from skyscript_assets.stages.scripts.table1 import shooting_script_text

WORDS = "door glass rain window coffee letter phone silence street promise train night smile cold answer".split()


def _scene(number: int) -> ShootingScript:
    def person(cid, name, line=None):
        return CharacterInShot(
            character_id=cid,
            name=name,
            emotion="sad",
            looks="a grey coat",
            action="turns away",
            vad=ContinuousEmotion(valence=3, arousal=6, dominance=5),
            location_cm=(40.0, 165.0, 310.0),
            line=line,
            temperament="warm",
            facial_attractiveness=4,
        )

    return ShootingScript(
        drama_id="bench-drama",
        episode_id=f"ep{number % 80:03d}",
        scene_number=number,
        interior=True,
        location="Coffee shop",
        time_of_day="night",
        description="A small coffee shop after closing.",
        shots=[
            ShotScript(
                shot_number=1,
                start_s=0,
                end_s=2.5,
                shot_size="medium",
                camera_angle="eye_level",
                camera_movement="static",
                characters=[person("char-1", "Emma", "You came back."), person("char-2", "Leo")],
            ),
            ShotScript(
                shot_number=2,
                start_s=2.5,
                end_s=4.0,
                shot_size="close_up",
                camera_movement="pan",
                characters=[person("char-2", "Leo", "Only for the cup.")],
            ),
        ],
    )


def generate_pairs(count: int, per_script: int = 100, seed: int = 0):
    """`count` pairs: `per_script` restorations of each generated scene, each with its own beat."""
    rng = random.Random(seed)
    template = _scene(1)
    script_json, text, draft = (
        json.dumps(template.model_dump(mode="json")),
        shooting_script_text(template),
        render_fountain(template),
    )
    for index in range(count):
        scene, restoration = divmod(index, per_script)
        beat = " ".join(rng.choice(WORDS) for _ in range(60))
        yield {
            "pair_id": f"bench-drama/ep{scene % 80:03d}/scene-{scene:06d}/r{restoration:03d}",
            "drama_id": "bench-drama",
            "episode_id": f"ep{scene % 80:03d}",
            "scene_number": scene,
            "shot_numbers": [1, 2],
            "restoration_index": restoration,
            "style": "genre=drama tone=tense length=medium language=en",
            "script": f"{draft}\n\n{beat}.\n",
            "shooting_script_json": script_json,
            "shooting_script_text": text,
            "highlight_score": rng.random(),
            "calibration_status": "passed",
            "model_id": "openai:bench",
            "seed": scene,
        }


def pair_bytes(row: dict) -> int:
    return sum(len(v.encode()) if isinstance(v, str) else 8 for v in row.values())


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Measured:
    """Counts the bytes of the rows that pass through, and the peak memory after the first shards."""

    def __init__(self, rows, rows_per_shard: int):
        self.rows, self.rows_per_shard, self.bytes, self.early_peak = rows, rows_per_shard, 0, None

    def __iter__(self):
        for number, row in enumerate(self.rows, start=1):
            self.bytes += pair_bytes(row)
            if number == 2 * self.rows_per_shard:
                self.early_peak = peak_rss_mib()
            yield row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--rows-per-shard", type=int, default=50_000)
    parser.add_argument(
        "--baseline-pairs", type=int, default=100_000, help="pairs written as JSON lines for the baseline"
    )
    parser.add_argument("--keep", action="store_true", help="keep the shards (printed path)")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="skyscript-release-bench-"))
    fs = fsspec.filesystem("file")

    # Generating the rows is not the writer's work: time it alone and subtract it.
    started = time.perf_counter()
    generated = sum(pair_bytes(row) for row in generate_pairs(options.baseline_pairs))
    generate_s_per_pair = (time.perf_counter() - started) / options.baseline_pairs

    started = time.perf_counter()
    with open(folder / "baseline.jsonl", "w") as f:
        for row in generate_pairs(options.baseline_pairs):
            f.write(json.dumps(row) + "\n")
    jsonl_s = time.perf_counter() - started - generate_s_per_pair * options.baseline_pairs
    jsonl_mb_s = generated / jsonl_s / 1e6
    (folder / "baseline.jsonl").unlink()

    measured = Measured(generate_pairs(options.pairs), options.rows_per_shard)
    started = time.perf_counter()
    shards = write_shards(
        measured, fs, str(folder / "data"), schema=PAIR_SCHEMA, rows_per_shard=options.rows_per_shard
    )
    write_s = time.perf_counter() - started - generate_s_per_pair * options.pairs
    end_peak = peak_rss_mib()
    parquet_mb_s = measured.bytes / write_s / 1e6
    on_disk = sum(s.bytes for s in shards)

    import datasets

    started = time.perf_counter()
    dataset = datasets.load_dataset(
        "parquet", data_files=str(folder / "data" / "*.parquet"), split="train", cache_dir=str(folder / "hf-cache")
    )
    load_s = time.perf_counter() - started
    assert dataset.num_rows == options.pairs, (dataset.num_rows, options.pairs)

    print(
        "| pairs | pair data | shards | on disk | write_shards | JSON lines (baseline) | ratio "
        "| peak RSS after 2 shards / at end | datasets load |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {options.pairs:,} | {measured.bytes / 1e9:.2f} GB | {len(shards)} | {on_disk / 1e9:.2f} GB | "
        f"{parquet_mb_s:.0f} MB/s | {jsonl_mb_s:.0f} MB/s | {parquet_mb_s / jsonl_mb_s:.2f}x | "
        f"{measured.early_peak or end_peak:.0f} / {end_peak:.0f} MiB | {dataset.num_rows:,} rows in {load_s:.0f} s |"
    )
    if options.keep:
        print(folder)
    else:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()

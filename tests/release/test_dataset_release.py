"""The dataset-level release (skyscript_dataset): the calibrated dramas' pairs merged into one
versioned folder that `datasets` loads, its card with the Table 2-style statistics and plots,
and incremental rewrites (files of unchanged dramas untouched: same bytes, same mtime).

Dramas are tiny: shooting scripts written into the catalog directly, restored offline by the
faithful renderer, released by script_pairs, as the demo's would be."""

from __future__ import annotations

import io
import json
from pathlib import Path

import dagster as dg
import fsspec
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from skyscript_assets.catalog import Catalog, Drama, ShootingScriptRow
from skyscript_assets.defs.platform.resources import local_resources
from skyscript_assets.defs.release.assets import restored_scripts, script_pairs
from skyscript_assets.defs.release.dataset import skyscript_dataset
from skyscript_assets.schema import CharacterInShot, ContinuousEmotion, ShootingScript, ShotScript
from skyscript_assets.settings import database_url
from skyscript_assets.stages.release.dataset import DramaSource, SourceShard, release_dataset, verify_dataset
from skyscript_assets.stages.release.shards import PAIR_SCHEMA, write_shards
from skyscript_assets.stages.scripts.table1 import shooting_script_text

fs = fsspec.filesystem("file")
PLACES = {"drama-a": ("Coffee shop", "Station"), "drama-b": ("Office", "Rooftop"), "drama-c": ("Hospital",)}


def drama_scripts(drama_id: str, *, emotion: str = "happy") -> list[ShootingScript]:
    """One episode, a scene per place, two shots each with sizes, emotions, lines and highlight scores."""
    scripts = []
    for number, place in enumerate(PLACES[drama_id], start=1):
        ann = CharacterInShot(
            character_id="char-1",
            name="Ann",
            emotion=emotion,
            line=f"We meet at the {place}.",
            vad=ContinuousEmotion(valence=7, arousal=5, dominance=5),
            location_cm=(0, 160, 300),
        )
        bo = CharacterInShot(character_id="char-2", name="Bo", emotion="sad", location_cm=(90, 175, 320))
        scripts.append(
            ShootingScript(
                drama_id=drama_id,
                episode_id="ep01",
                scene_number=number,
                interior=number % 2 == 1,
                location=place,
                time_of_day="day",
                shots=[
                    ShotScript(
                        shot_number=1,
                        start_s=0,
                        end_s=2.0,
                        shot_size="wide",
                        highlight_score=0.15,
                        characters=[ann, bo],
                    ),
                    ShotScript(
                        shot_number=2,
                        start_s=2.0,
                        end_s=3.5,
                        shot_size="close_up",
                        highlight_score=0.85,
                        characters=[ann],
                    ),
                ],
            )
        )
    return scripts


def seed_drama(drama_id: str, status: str = "passed", **kwargs) -> None:
    catalog = Catalog(database_url())
    prov = {"run_id": "seed", "partition": drama_id, "stage_version": "1", "model_id": ""}
    catalog.replace_partition_rows(
        asset_key="calibrated_shooting_scripts",
        partition=drama_id,
        tables=[ShootingScriptRow],
        rows=[
            ShootingScriptRow(
                drama_id=drama_id,
                episode_id=s.episode_id,
                scene_number=s.scene_number,
                shots=len(s.shots),
                script=s.model_dump(mode="json"),
                text=shooting_script_text(s),
                calibration_status=status,
                asset_key="calibrated_shooting_scripts",
                **prov,
            )
            for s in drama_scripts(drama_id, **kwargs)
        ],
    )
    catalog.replace_partition_rows(
        asset_key="drama_manifest",
        partition=drama_id,
        tables=[Drama],
        rows=[
            Drama(
                drama_id=drama_id,
                title=drama_id,
                language="en",
                landing_uri="/nowhere",
                asset_key="drama_manifest",
                **prov,
            )
        ],
    )


def release(instance, drama_id: str) -> None:
    """restored_scripts and script_pairs of one drama, as its drama_pipeline run would."""
    instance.add_dynamic_partitions("dramas", [drama_id])
    result = dg.materialize(
        [restored_scripts, script_pairs], partition_key=drama_id, instance=instance, resources=local_resources()
    )
    assert result.success


def materialize_dataset(instance) -> tuple[dict, dict]:
    """(the asset's metadata, its checks by name)."""
    result = dg.materialize([skyscript_dataset], instance=instance, resources=local_resources())
    assert result.success
    [event] = result.get_asset_materialization_events()
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return {k: v.value for k, v in event.materialization.metadata.items()}, checks


def files_state(folder: Path, drama_id: str) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted((folder / "data").glob(f"{drama_id}-*"))}


def load(folder: Path, cache: Path, *, by_folder: bool = True):
    from datasets import load_dataset

    if by_folder:
        return load_dataset(str(folder), split="train", cache_dir=str(cache))
    return load_dataset("parquet", data_files=str(folder / "data" / "*.parquet"), split="train", cache_dir=str(cache))


def test_dataset_of_two_dramas_loads_and_a_third_leaves_their_files_untouched(skyscript_home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = skyscript_home / "artifacts" / "_datasets" / "skyscript"
    with dg.instance_for_test() as instance:
        for drama_id in ("drama-a", "drama-b"):
            seed_drama(drama_id)
            release(instance, drama_id)
        seed_drama("drama-c", status="pending")  # not calibrated yet: not in the dataset
        meta, checks = materialize_dataset(instance)

        assert (meta["version"], meta["dramas"], meta["pairs"], meta["shooting_scripts"], meta["shots"]) == (
            1,
            2,
            4,
            4,
            8,
        )
        assert meta["dramas_added"] == 2 and checks["dataset_matches_manifest"].passed
        assert "not released: calibration not passed (statuses: pending)" in meta["changes"]
        # the card in the UI carries the statistics and the plots inline
        assert "| dramas | 2 |" in meta["dataset_card"] and meta["dataset_card"].count("data:image/png;base64,") == 4
        assert meta["folder"] == str(folder)

        dataset = load(folder, skyscript_home / "hf")
        assert dataset.num_rows == 4 and set(dataset["drama_id"]) == {"drama-a", "drama-b"}
        assert set(dataset["decoding"]) == {"rendered"} and dataset.column_names == [f.name for f in PAIR_SCHEMA]
        assert load(folder, skyscript_home / "hf2", by_folder=False).num_rows == 4

        card = (folder / "README.md").read_text()
        header = yaml.safe_load(card.split("---")[1])
        assert header["configs"][0]["data_files"][0]["path"] == "data/*.parquet"
        for row in (
            "| dramas | 2 |",
            "| episodes | 2 |",
            "| shots | 8 |",
            "| shooting scripts | 4 |",
            "| scripts (restorations, one pair each) | 4 |",
            "| average shots per shooting script | 2.0 |",
            "| average shot length (seconds) | 1.75 |",
            "| interior / exterior / unknown scenes | 2 / 2 / 0 |",
        ):
            assert row in card, row
        assert "| average script length (words) |" in card
        assert "| close up | 4 | 50.0% |" in card and "| wide | 4 | 50.0% |" in card  # shot sizes
        assert "| happy | 8 | 66.7% |" in card and "| sad | 4 | 33.3% |" in card  # emotions
        assert "| coffee shop | 1 | 25.0% |" in card  # scenes
        assert "| 0.1-0.2 | 4 | 50.0% |" in card and "| 0.8-0.9 | 4 | 50.0% |" in card  # highlight
        for name in ("shot_sizes", "emotions", "scenes", "highlight"):
            assert f"(plots/{name}.png)" in card
            png = Image.open(io.BytesIO((folder / "plots" / f"{name}.png").read_bytes()))
            assert png.format == "PNG" and png.width == 720

        # a third drama: only its file is written, the first two's files are untouched
        before = {d: files_state(folder, d) for d in ("drama-a", "drama-b")}
        plots_before = (folder / "plots" / "scenes.png").read_bytes()
        seed_drama("drama-c")  # calibration passed
        release(instance, "drama-c")
        meta, checks = materialize_dataset(instance)
        assert (meta["version"], meta["dramas"], meta["dramas_added"], meta["dramas_unchanged"]) == (2, 3, 1, 2)
        assert {d: files_state(folder, d) for d in ("drama-a", "drama-b")} == before
        assert len(files_state(folder, "drama-c")) == 1 and checks["dataset_matches_manifest"].passed
        assert (folder / "plots" / "scenes.png").read_bytes() != plots_before  # a new scene: a new plot
        assert load(folder, skyscript_home / "hf3").num_rows == 5
        manifest = json.loads((folder / "manifest.json").read_text())
        assert [h["added"] for h in manifest["history"]] == [["drama-a", "drama-b"], ["drama-c"]]

        # drama-a released again with the same pairs: a new run, the same bytes, nothing rewritten
        state = {d: files_state(folder, d) for d in PLACES}
        card_mtime = (folder / "README.md").stat().st_mtime_ns
        release(instance, "drama-a")
        meta, _ = materialize_dataset(instance)
        assert (meta["version"], meta["dramas_unchanged"], meta["files_written"]) == (2, 3, 1)  # the manifest only
        assert {d: files_state(folder, d) for d in PLACES} == state
        assert (folder / "README.md").stat().st_mtime_ns == card_mtime


def _source(tmp: Path, drama_id: str, rows: list[dict], status: str = "passed", schema=PAIR_SCHEMA) -> DramaSource:
    """A drama's release shards written as script_pairs would, and the catalog's record of them."""
    shards = write_shards(rows, fs, str(tmp / "releases" / drama_id / "data"), schema=schema)
    return DramaSource(
        drama_id, tuple(SourceShard(s.path, s.rows, s.bytes, "run") for s in shards), frozenset({status})
    )


def _rows(drama_id: str, emotion: str = "happy") -> list[dict]:
    return [
        {
            "pair_id": f"{s.script_id}/r000",
            "drama_id": drama_id,
            "episode_id": s.episode_id,
            "scene_number": s.scene_number,
            "shot_numbers": [1, 2],
            "restoration_index": 0,
            "style": "faithful",
            "script": f"INT. {s.location.upper()} - DAY\n\nAnn waits.",
            "shooting_script_json": s.model_dump_json(),
            "shooting_script_text": shooting_script_text(s),
            "calibration_status": "passed",
            "model_id": "m",
        }
        for s in drama_scripts(drama_id, emotion=emotion)
    ]


def test_a_changed_drama_is_rewritten_under_its_new_hash_and_a_withdrawn_one_leaves(tmp_path):
    folder = str(tmp_path / "dataset")
    old_schema = PAIR_SCHEMA.remove(PAIR_SCHEMA.get_field_index("decoding"))  # a release written before `decoding`
    a, b = (
        _source(tmp_path, "drama-a", _rows("drama-a"), schema=old_schema),
        _source(tmp_path, "drama-b", _rows("drama-b")),
    )
    first = release_dataset([a, b], fs, folder, name="skyscript")
    assert first.version == 1 and first.added == ["drama-a", "drama-b"] and verify_dataset(fs, folder) == []
    [a_file] = json.loads(Path(folder, "manifest.json").read_text())["dramas"]["drama-a"]["files"]
    assert pq.read_table(f"{folder}/{a_file['path']}").schema.names == PAIR_SCHEMA.names  # `decoding` null
    b_state = files_state(Path(folder), "drama-b")
    old_a = set(files_state(Path(folder), "drama-a"))

    again = release_dataset([a, b], fs, folder, name="skyscript")
    assert again.version == 1 and again.written == [] and again.deleted == []  # nothing changed: nothing written

    a2 = _source(tmp_path, "drama-a", _rows("drama-a", emotion="angry"))  # a reviewer's correction, say
    second = release_dataset([a2, b], fs, folder, name="skyscript")
    assert second.version == 2 and second.updated == ["drama-a"] and second.unchanged == ["drama-b"]
    new_a = set(files_state(Path(folder), "drama-a"))
    assert new_a and not new_a & old_a  # the new hash in the name; the old file gone
    assert files_state(Path(folder), "drama-b") == b_state and second.stats["emotions"]["angry"] == 4
    assert verify_dataset(fs, folder) == []

    withdrawn = DramaSource("drama-b", b.shards, frozenset({"passed", "needs_repair"}))  # sent back for repair
    third = release_dataset([a2, withdrawn], fs, folder, name="skyscript")
    assert third.version == 3 and third.removed == ["drama-b"] and not files_state(Path(folder), "drama-b")
    assert third.skipped == {"drama-b": "calibration not passed (statuses: needs_repair, passed)"}
    assert verify_dataset(fs, folder) == [] and third.stats["dramas"] == 1


def test_an_unreadable_shard_keeps_the_dramas_previous_files(tmp_path):
    folder = str(tmp_path / "dataset")
    a = _source(tmp_path, "drama-a", _rows("drama-a"))
    release_dataset([a], fs, folder, name="skyscript")
    state = files_state(Path(folder), "drama-a")
    Path(a.shards[0].uri).write_bytes(b"not parquet")
    broken = DramaSource("drama-a", (SourceShard(a.shards[0].uri, 2, 11, "run-2"),), a.statuses)
    result = release_dataset([broken], fs, folder, name="skyscript")
    assert (
        result.version == 1
        and "not read" in result.skipped["drama-a"]
        and "previous files" in result.skipped["drama-a"]
    )
    assert files_state(Path(folder), "drama-a") == state and verify_dataset(fs, folder) == []


@pytest.mark.parametrize("extra", [["stray.parquet"]])
def test_a_file_the_manifest_does_not_name_fails_the_check_and_is_swept(tmp_path, extra):
    folder = tmp_path / "dataset"
    a = _source(tmp_path, "drama-a", _rows("drama-a"))
    release_dataset([a], fs, str(folder), name="skyscript")
    for name in extra:
        (folder / "data" / name).write_bytes(b"x")
    assert verify_dataset(fs, str(folder)) == [f"not in the manifest: {folder / 'data' / 'stray.parquet'}"]
    swept = release_dataset([a], fs, str(folder), name="skyscript")
    assert swept.deleted == [str(folder / "data" / "stray.parquet")] and verify_dataset(fs, str(folder)) == []


def test_drama_pipeline_leaves_the_dataset_and_the_reports_out():
    from skyscript_assets.definitions import DRAMA_ASSETS, REPORT_ASSETS, defs

    job = defs.resolve_job_def("drama_pipeline")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        a.key.to_user_string() for a in DRAMA_ASSETS
    }
    assert "skyscript_dataset" in {a.key.to_user_string() for a in REPORT_ASSETS}


def test_the_cli_says_where_the_dataset_is():
    from skyscript_assets.defs.platform.runner import AssetOutcome
    from skyscript_assets.defs.release.dataset import dataset_lines

    done = AssetOutcome(
        "skyscript_dataset", True, 1.0, {"folder": "/a/_datasets/skyscript", "version": 2, "dramas": 1, "pairs": 9}
    )
    assert dataset_lines([done])[0] == (
        "\nDataset: /a/_datasets/skyscript  version 2, 1 calibrated drama, 9 pairs "
        "(card with statistics and plots: /a/_datasets/skyscript/README.md)"
    )
    assert "load_dataset('/a/_datasets/skyscript', split='train')" in dataset_lines([done])[1]
    empty = AssetOutcome("skyscript_dataset", True, 1.0, {"folder": "/a/_datasets/skyscript", "dramas": 0})
    assert "empty until a drama passes calibration" in dataset_lines([empty])[0]
    assert dataset_lines([AssetOutcome("skyscript_dataset", False, 1.0)]) == []

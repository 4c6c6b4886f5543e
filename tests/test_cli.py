"""The `skyscript` command, run as a user runs it (a subprocess with its own SKYSCRIPT_HOME)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

BIN = Path(sys.executable).parent


def run(args, home: Path, check=True, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSCRIPT_", "DAGSTER_"))}
    environ.update({"SKYSCRIPT_HOME": str(home), **env})
    proc = subprocess.run(args, capture_output=True, text=True, env=environ, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def skyscript(*args, home: Path, check=True):
    return run([sys.executable, "-m", "skyscript_assets.cli", *args], home, check=check)


def test_help_lists_the_commands(tmp_path):
    out = skyscript("--help", home=tmp_path).stdout
    for command in ("demo", "ingest", "db", "ui"):
        assert command in out


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    home = tmp_path / "home"
    proc = skyscript("demo", home=home)
    out = proc.stdout
    assert "drama_manifest done" in out and "Summary for drama 'sample-drama'" in out
    assert "dagster dev" in out
    assert "Traceback" not in proc.stderr
    truth = json.loads((home / "demo_groundtruth" / "sample-drama.json").read_text())
    assert set(truth) == {"ep01.mp4", "ep02.mp4", "ep03.mp4"}
    assert any(g[2] == "fade" for t in truth.values() for g in t["gradual_frames"])
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from episodes")).scalar() == 3
    engine.dispose()

    # The same instance serves `dagster asset materialize`: a re-run from Dagster's own CLI
    # sees the demo's partition and leaves the same row counts.
    proc = run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "skyscript_assets.definitions",
            "--select",
            "drama_manifest",
            "--partition",
            "sample-drama",
        ],
        home,
        DAGSTER_HOME=str(home / "dagster"),
    )
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from episodes")).scalar() == 3
        assert conn.execute(text("select count(*) from dramas")).scalar() == 1
    engine.dispose()


def test_ingest_registers_and_runs_a_drama_folder(tmp_path, make_video):
    home = tmp_path / "home"
    source = tmp_path / "incoming" / "new-drama"
    make_video(source / "ep1.mp4")
    (source / "readme.pdf").write_bytes(b"%PDF-1.4")
    proc = skyscript("ingest", str(source), "--run", home=home)
    assert "registered" in proc.stdout and "drama_manifest done" in proc.stdout
    assert "[drama_manifest/not_a_video]" in proc.stdout
    assert (home / "landing" / "new-drama" / "ep1.mp4").exists()


@pytest.mark.parametrize("drama_id, words", [("../x", "path separator"), ("Bad Name", "lowercase slug")])
def test_ingest_rejects_unsafe_names_in_one_line(tmp_path, make_video, drama_id, words):
    source = tmp_path / "src"
    make_video(source / "ep1.mp4")
    proc = skyscript("ingest", str(source), "--drama-id", drama_id, home=tmp_path / "home", check=False)
    assert proc.returncode == 2
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "home" / "landing").exists()


def test_ingest_of_a_missing_folder_is_one_line(tmp_path):
    proc = skyscript("ingest", str(tmp_path / "nope"), home=tmp_path / "home", check=False)
    assert proc.returncode == 2 and "not a folder" in proc.stderr and "Traceback" not in proc.stderr


def test_db_upgrade_creates_the_catalog(tmp_path):
    home = tmp_path / "home"
    proc = skyscript("db", "upgrade", home=home)
    assert "upgraded to head" in proc.stdout
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.connect() as conn:
        tables = {r[0] for r in conn.execute(text("select name from sqlite_master where type='table'"))}
    assert {"dramas", "episodes", "losses"} <= tables
    engine.dispose()


# --- skyscript export -------------------------------------------------------------------------


def _released_drama(home: Path, release: bool = True) -> str:
    """A drama whose shooting scripts sit in the catalog, released offline (uncalibrated, explicitly)."""
    import dagster as dg
    from release.test_restoration_assets import DRAMA, materialize_release, sample_scripts, seed_catalog

    from skyscript_assets.defs.platform.resources import RestorationLlmResource
    from skyscript_assets.defs.release.assets import restored_scripts, script_pairs

    seed_catalog(sample_scripts("offline"))
    if release:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("dramas", [DRAMA])
            materialize_release(instance, RestorationLlmResource(), {}, assets=[restored_scripts, script_pairs])
    return DRAMA


def test_export_writes_parquet_jsonl_and_fountain(skyscript_home, tmp_path):
    import pyarrow.parquet as pq

    from skyscript_assets.stages.release.fountain import read_fountain

    drama = _released_drama(skyscript_home)
    out = tmp_path / "out"
    proc = skyscript("export", drama, "--format", "parquet", "--out", str(out / "parquet"), home=skyscript_home)
    assert "exported 5 files" in proc.stdout
    assert pq.read_table(out / "parquet" / "data" / "part-00000.parquet").num_rows == 2
    assert pq.read_table(out / "parquet" / "relationships" / "relationship_edges.parquet").num_rows == 2
    assert (out / "parquet" / "relationships" / "character_pairs.parquet").is_file()
    assert "| pairs | 2 |" in (out / "parquet" / "README.md").read_text()

    proc = skyscript("export", drama, "--format", "jsonl", "--out", str(out / "jsonl"), home=skyscript_home)
    lines = (out / "jsonl" / "pairs.jsonl").read_text().splitlines()
    assert "exported 2 pairs" in proc.stdout and len(lines) == 2
    pairs = [json.loads(line) for line in lines]
    assert [p["pair_id"] for p in pairs] == [f"{drama}/ep01/scene-0001/r000", f"{drama}/ep01/scene-0002/r000"]
    assert json.loads(pairs[0]["shooting_script_json"])["location"] == "Coffee shop"

    proc = skyscript("export", drama, "--format", "fountain", "--out", str(out / "fountain"), home=skyscript_home)
    files = sorted(p.name for p in (out / "fountain").iterdir())
    assert files == ["ep01__scene-0001__r000.fountain", "ep01__scene-0002__r000.fountain"]
    document = read_fountain((out / "fountain" / files[1]).read_text())
    assert document.headings == ["INT. STATION - DAY"] and "LEO" in document.speakers


@pytest.mark.parametrize(
    "case, words", [("unknown", "unknown drama"), ("unreleased", "is not released"), ("unsafe", "path separator")]
)
def test_export_of_a_drama_that_cannot_be_exported_is_one_line(skyscript_home, tmp_path, case, words):
    drama = {"unknown": "no-such-drama", "unsafe": "../x"}.get(case) or _released_drama(skyscript_home, release=False)
    proc = skyscript(
        "export", drama, "--format", "jsonl", "--out", str(tmp_path / "out"), home=skyscript_home, check=False
    )
    assert proc.returncode == 2 and words in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()

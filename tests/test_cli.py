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
    proc = run([str(BIN / "dagster"), "asset", "materialize", "-m", "skyscript_assets.definitions",
                "--select", "drama_manifest", "--partition", "sample-drama"], home,
               DAGSTER_HOME=str(home / "dagster"))
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

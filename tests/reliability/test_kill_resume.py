"""SIGKILL at random points of a run, then re-run: no duplicated rows, no lost rows, and the
same catalog content and artifacts as a run that was never interrupted.

The run covers every asset in DRAMA_ASSETS (through `skyscript ingest --run`), so each
stage is exercised here as soon as it joins the pipeline."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .snapshots import artifact_snapshot, catalog_snapshot

pytestmark = pytest.mark.slow
KILL_POINTS = int(os.environ.get("SKYSCRIPT_KILL_POINTS", "4"))


def _cli(home: Path, source: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSCRIPT_", "DAGSTER_"))}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skyscript_assets.cli",
            "--home",
            str(home),
            "ingest",
            str(source),
            "--drama-id",
            "kill-drama",
            "--run",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _reset(home: Path) -> None:
    for name in ("catalog.db", "catalog.db-wal", "catalog.db-shm", "artifacts", "dagster"):
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def test_random_kills_then_rerun_match_an_uninterrupted_run(tmp_path, make_video):
    source = tmp_path / "source"
    make_video(source / "ep1.mp4", [((200, 30, 30), 1.0, "start"), ((30, 200, 30), 1.0, "cut")], size=(160, 96))
    make_video(source / "ep2.mp4", [((30, 30, 200), 1.0, "start"), ((200, 200, 30), 1.0, "fade")], size=(160, 96))
    make_video(source / "ep3.mp4", [((90, 30, 160), 1.5, "start")], size=(160, 96))
    home = tmp_path / "home"

    started = time.monotonic()
    reference = _cli(home, source)
    out, _ = reference.communicate(timeout=600)
    assert reference.returncode == 0, out
    run_seconds = time.monotonic() - started
    expected_rows, expected_files = catalog_snapshot(home), artifact_snapshot(home)
    assert expected_rows["episodes"], "the reference run wrote no episodes"

    # Kill at a random moment, re-run, kill again... A run that finishes before its kill ends
    # the chain: its result must already match, and the next chain starts from nothing, so
    # every one of the KILL_POINTS kills lands inside real work.
    _reset(home)
    rng = random.Random(20261124)
    killed = attempts = 0
    while killed < KILL_POINTS and attempts < 3 * KILL_POINTS:
        attempts += 1
        proc = _cli(home, source)
        try:  # anywhere from start-up to the release stages
            out, _ = proc.communicate(timeout=rng.uniform(1.0, run_seconds))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
            killed += 1
            continue
        assert proc.returncode == 0, out
        assert catalog_snapshot(home) == expected_rows
        assert artifact_snapshot(home) == expected_files
        _reset(home)
    assert killed == KILL_POINTS, f"only {killed} of {KILL_POINTS} runs were interrupted"
    final = _cli(home, source)
    out, _ = final.communicate(timeout=600)
    assert final.returncode == 0, out

    assert catalog_snapshot(home) == expected_rows
    assert artifact_snapshot(home) == expected_files

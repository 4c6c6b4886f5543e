"""The same inputs and configuration give identical outputs: the demo drama, run end to end in
two separate homes, leaves the same catalog rows and byte-identical artifacts (keyframe JPEGs,
annotations, shooting scripts, seeded calibration packets, Parquet shards, the dataset card)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .snapshots import artifact_snapshot, catalog_snapshot

pytestmark = pytest.mark.slow
# Fingerprints of the inputs' location and file times: two homes differ there by design.
INPUT_IDENTITY = frozenset({"landing_fingerprint", "input_hash"})


def _demo(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSCRIPT_", "DAGSTER_"))}
    done = subprocess.run([sys.executable, "-m", "skyscript_assets.cli", "--home", str(home), "demo"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_two_runs_of_the_same_drama_are_identical(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    _demo(first)
    _demo(second)

    rows = catalog_snapshot(first, ignore=INPUT_IDENTITY)
    assert rows["shooting_scripts"] and rows["release_shards"], "the demo produced no shooting scripts or shards"
    assert catalog_snapshot(second, ignore=INPUT_IDENTITY) == rows
    files = artifact_snapshot(first)
    assert any(name.endswith(".parquet") for name in files) and any(name.endswith(".jpg") for name in files)
    assert artifact_snapshot(second) == files

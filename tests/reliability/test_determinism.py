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
    done = subprocess.run(
        [sys.executable, "-m", "skyscript_assets.cli", "--home", str(home), "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
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


_RENDER = """
import hashlib, os, sys
from pathlib import Path
import numpy as np
from skyscript_assets.demo.synthetic import ShotSpec, render_video
if sys.argv[2] == "one-core":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
rng = np.random.default_rng(7)
shots = [ShotSpec(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8), 1.0, "pan"),
         ShotSpec(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8), 1.0, "zoom", "cut")]
render_video(Path(sys.argv[1]), shots, size=(320, 180))
print(hashlib.sha256(Path(sys.argv[1]).read_bytes()).hexdigest())
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
@pytest.mark.skipif(
    hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) < 2,
    reason="one core: all cores and one core are the same render",
)
def test_rendered_videos_do_not_depend_on_the_cores_available(tmp_path):
    """x264 picks its thread count from the cores, and its output bytes with it: the demo
    drama (and so every catalog row after it) must be the same on a laptop and in CI."""
    digests = {}
    for cores in ("all-cores", "one-core"):
        done = subprocess.run(
            [sys.executable, "-c", _RENDER, str(tmp_path / f"{cores}.mp4"), cores],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        digests[cores] = done.stdout.strip()
    assert digests["all-cores"] == digests["one-core"]

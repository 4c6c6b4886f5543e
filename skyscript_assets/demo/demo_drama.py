"""The demo drama: three short episodes rendered from photographs that ship inside
scikit-image, with hard cuts, a fade, a dissolve, pans, zooms and subtitle lines, and
their ground truth written beside the landing zone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import skimage.data

from skyscript_assets.demo.synthetic import ShotSpec, render_video

DEMO_DRAMA_ID = "sample-drama"
DEMO_SIZE = (360, 640)


def _photos() -> dict[str, np.ndarray]:
    names = ["astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry", "hubble_deep_field"]
    return {name: getattr(skimage.data, name)() for name in names}


def demo_episodes() -> dict[str, list[ShotSpec]]:
    p = _photos()
    return {
        "ep01.mp4": [
            ShotSpec(p["astronaut"], 2.5, "zoom", subtitle="Commander, the launch window opens at dawn."),
            ShotSpec(p["rocket"], 2.0, "pan", "cut"),
            ShotSpec(p["astronaut"], 2.0, "static", "cut", subtitle="Then we fly. No more waiting."),
        ],
        "ep02.mp4": [
            ShotSpec(p["coffee"], 2.0, "static", subtitle="You came back. I kept your cup."),
            ShotSpec(p["chelsea"], 2.0, "pan", "fade"),
            ShotSpec(p["coffee"], 2.0, "zoom", "cut", subtitle="I'm Emma. I never left."),
        ],
        "ep03.mp4": [
            ShotSpec(p["hubble_deep_field"], 2.0, "zoom"),
            ShotSpec(p["camera"], 2.0, "static", "dissolve", subtitle="Who took this picture?"),
            ShotSpec(p["immunohistochemistry"], 1.5, "pan", "cut"),
        ],
    }


def write_demo_drama(landing_dir: Path, groundtruth_dir: Path, *, drama_id: str = DEMO_DRAMA_ID) -> Path:
    """Render the demo drama into `landing_dir/drama_id` (skipped if already complete)."""
    folder = landing_dir / drama_id
    truth_path = groundtruth_dir / f"{drama_id}.json"
    episodes = demo_episodes()
    if truth_path.exists() and all((folder / name).exists() for name in episodes):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    # Vertical 9:16, as short dramas are shot for phones.
    truth = {name: render_video(folder / name, shots, size=DEMO_SIZE) for name, shots in episodes.items()}
    (folder / "drama.json").write_text(
        json.dumps(
            {
                "title": "The Launch Window (demo)",
                "language": "en",
                "source": "rendered from scikit-image sample photographs",
            },
            indent=2,
        )
    )
    groundtruth_dir.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, indent=2))
    return folder

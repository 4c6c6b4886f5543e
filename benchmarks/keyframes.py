"""Keyframes stage against its baselines, on the shared clips, in one run.

For every clip in ../shared/data/videos (with groundtruth.json):
  (a) decode-only: PyAV decodes every frame and does nothing else (same decoder
      threading as the stage: thread_type AUTO),
  (b) this stage: `process_episode` (features, shot boundaries, keyframe selection,
      quality filter, JPEG writing),
  (c) PySceneDetect 0.7 ContentDetector and AdaptiveDetector with default settings, on
      its default video backend (OpenCV) and on its PyAV backend (the stage's decoder).
Per clip and overall: wall time (best of --repeats, runs interleaved), times realtime,
ratio to decode-only, and hard-cut F1 at a tolerance of one frame.

Then peak memory (max RSS of a fresh process) of the stage on generated videos of
1, 5 and 10 minutes, to show it is flat in the video's length (--no-memory skips it).

    python benchmarks/keyframes.py [--videos DIR] [--repeats 3] [--no-memory]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyscript_assets.stages.keyframes import EpisodeJob, process_episode  # noqa: E402

DEFAULT_VIDEOS = ROOT.parent / "shared" / "data" / "videos"


def decode_only(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            count += 1
    return time.perf_counter() - started, count


def this_stage(path: Path, out: Path) -> tuple[float, list[int]]:
    started = time.perf_counter()
    analysis = process_episode(EpisodeJob(path.stem, str(path), str(out))).result
    elapsed = time.perf_counter() - started
    return elapsed, [s.start_frame for s in analysis.shots if s.transition_in == "cut"]


def pyscenedetect(path: Path, method: str) -> tuple[float, list[int]]:
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

    detector_name, _, backend = method.partition("-")
    detector = {"content": ContentDetector, "adaptive": AdaptiveDetector}[detector_name]()
    started = time.perf_counter()
    video = open_video(str(path), backend=backend) if backend else open_video(str(path))
    manager = SceneManager()
    manager.add_detector(detector)
    manager.detect_scenes(video)
    scenes = manager.get_scene_list()
    elapsed = time.perf_counter() - started
    return elapsed, [start.frame_num for start, _ in scenes[1:]]


def f1_score(predicted: list[int], truth: list[int], tolerance: int = 1) -> tuple[float, int, int, int]:
    """Greedy one-to-one matching within `tolerance` frames; F1 is 1.0 when both are empty."""
    unmatched = sorted(truth)
    tp = 0
    for p in sorted(predicted):
        match = next((t for t in unmatched if abs(t - p) <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            tp += 1
    fp, fn = len(predicted) - tp, len(truth) - tp
    f1 = 1.0 if not predicted and not truth else 2 * tp / (2 * tp + fp + fn)
    return f1, tp, fp, fn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--repeats", type=int, default=3, help="runs of (a) and (b) per clip; the best counts")
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    truth_file = args.videos / "groundtruth.json"
    if not truth_file.is_file():
        print(f"no {truth_file}: nothing to measure", file=sys.stderr)
        return 1
    clips = json.loads(truth_file.read_text())["clips"]
    methods = ["decode", "stage", *PYSCENEDETECT]
    totals = {m: {"wall": 0.0, "tp": 0, "fp": 0, "fn": 0} for m in methods}
    total_duration = 0.0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, truth in clips.items():
            path = args.videos / name
            if not path.is_file():
                continue
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                duration = float(stream.duration * stream.time_base) if stream.duration else container.duration / av.time_base
            total_duration += duration
            cuts_truth = truth["cut_frames"]
            walls = {"decode": [], "stage": []}
            stage_cuts: list[int] = []
            for r in range(args.repeats):
                walls["decode"].append(decode_only(path)[0])
                wall, stage_cuts = this_stage(path, Path(tmp) / f"{path.stem}-{r}")
                walls["stage"].append(wall)
            results = {"decode": (min(walls["decode"]), None), "stage": (min(walls["stage"]), stage_cuts)}
            for method in PYSCENEDETECT:
                results[method] = pyscenedetect(path, method)
            decode_wall = results["decode"][0]
            for method in methods:
                wall, cuts = results[method]
                f1 = f1_score(cuts, cuts_truth) if cuts is not None else None
                totals[method]["wall"] += wall
                if f1:
                    for key, value in zip(("tp", "fp", "fn"), f1[1:]):
                        totals[method][key] += value
                rows.append((name, method, wall, duration / wall, wall / decode_wall, f1))
    print_table(rows, totals, total_duration)
    if not args.no_memory:
        print_memory()
    return 0


PYSCENEDETECT = ["content", "adaptive", "content-pyav", "adaptive-pyav"]
LABELS = {"decode": "PyAV decode only", "stage": "**this stage**",
          "content": "PySceneDetect ContentDetector (OpenCV backend)",
          "adaptive": "PySceneDetect AdaptiveDetector (OpenCV backend)",
          "content-pyav": "PySceneDetect ContentDetector (PyAV backend)",
          "adaptive-pyav": "PySceneDetect AdaptiveDetector (PyAV backend)"}


def print_table(rows, totals, total_duration: float) -> None:
    print("| clip | method | wall s | x realtime | / decode-only | cut F1 (tp/fp/fn) |")
    print("|---|---|---:|---:|---:|---|")
    for name, method, wall, realtime, ratio, f1 in rows:
        score = "-" if f1 is None else f"{f1[0]:.3f} ({f1[1]}/{f1[2]}/{f1[3]})"
        print(f"| {name} | {LABELS[method]} | {wall:.2f} | {realtime:.1f} | {ratio:.2f} | {score} |")
    decode = totals["decode"]["wall"]
    for method, t in totals.items():
        if method == "decode":
            score = "-"
        else:
            tp, fp, fn = t["tp"], t["fp"], t["fn"]
            score = f"{2 * tp / max(1, 2 * tp + fp + fn):.3f} ({tp}/{fp}/{fn})"
        print(f"| **all clips** | {LABELS[method]} | {t['wall']:.2f} | {total_duration / t['wall']:.1f} "
              f"| {t['wall'] / decode:.2f} | {score} |")
    print()
    for method in PYSCENEDETECT:
        print(f"this stage is {totals[method]['wall'] / totals['stage']['wall']:.2f}x faster than {LABELS[method]}")


MEMORY_PROBE = """
import resource, sys
sys.path.insert(0, sys.argv[2])
from skyscript_assets.stages.keyframes import EpisodeJob, process_episode
a = process_episode(EpisodeJob("probe", sys.argv[1], sys.argv[3])).result
print(len(a.shots), len(a.keyframes), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def print_memory() -> None:
    from skimage import data

    from skyscript_assets.stages.synthetic import ShotSpec, render_video

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.camera()]
    print("\n| generated video (640x360, 24 fps) | shots | keyframes | peak RSS MiB |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in (1, 5, 10):
            # 6-second shots, cycling photos and motions, with a fade or a dissolve every fifth shot
            shots = []
            for k in range(minutes * 10):
                transition = "start" if k == 0 else ("fade" if k % 10 == 5 else "dissolve" if k % 5 == 3 else "cut")
                shots.append(ShotSpec(photos[k % len(photos)], 6.0, ("static", "pan", "zoom")[k % 3], transition))
            path = Path(tmp) / f"generated_{minutes}min.mp4"
            render_video(path, shots)
            out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path), str(ROOT), str(Path(tmp) / "kf")],
                                 capture_output=True, text=True, check=True).stdout.split()
            print(f"| {minutes} min | {out[0]} | {out[1]} | {int(out[2]) / 1024:.0f} |")


if __name__ == "__main__":
    raise SystemExit(main())

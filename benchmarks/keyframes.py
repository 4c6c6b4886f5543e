"""Keyframes stage against its baselines, on the shared clips, in one run.

For every clip in ../shared/data/videos (with groundtruth.json):
  (a) decode-only: PyAV decodes every frame and does nothing else, with FFmpeg's
      automatic threading (thread_type AUTO, the usual advice for a fast PyAV loop),
  (b) this stage: `process_episode` (features, shot boundaries, keyframe selection,
      quality filter, JPEG writing), its decoding split at keyframes over one thread per
      core (`stages/segment_decode.py`),
  (b') the stage's decoding alone: the same split decode, nothing done with the frames
      (what the stage costs beyond this is its analysis),
  (c) PySceneDetect 0.7 ContentDetector and AdaptiveDetector with default settings, on
      its default video backend (OpenCV) and on its PyAV backend (the stage's decoder).
Per clip and overall: wall time and CPU time of the process, all threads (each the best
of --repeats, runs interleaved), times realtime, wall-time ratio to decode-only, and
hard-cut F1 at a tolerance of one frame. CPU time is the steadier figure on a shared
machine: other processes change the wall time, hardly the work.

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

from skyscript_assets.stages.video.keyframes import EpisodeJob, decode_threads, process_episode  # noqa: E402
from skyscript_assets.stages.video.segment_decode import analysed_frames  # noqa: E402
from skyscript_assets.stages.video.shots import boundary_f1  # noqa: E402

DEFAULT_VIDEOS = ROOT.parent / "shared" / "data" / "videos"


def timed(run):
    """(wall s, CPU s of the whole process, run's result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def decode_only(path: Path) -> None:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass
    return None


def segment_decode_only(path: Path) -> None:
    with av.open(str(path)) as container:
        for _ in analysed_frames(container, container.streams.video[0], lambda frame, number: (None, 1),
                                 workers=decode_threads()):
            pass
    return None


def this_stage(path: Path, out: Path) -> list[int]:
    analysis = process_episode(EpisodeJob(path.stem, str(path), str(out))).results[0]
    return [s.start_frame for s in analysis.shots if s.transition_in == "cut"]


def pyscenedetect(path: Path, method: str) -> list[int]:
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

    detector_name, _, backend = method.partition("-")
    detector = {"content": ContentDetector, "adaptive": AdaptiveDetector}[detector_name]()
    video = open_video(str(path), backend=backend) if backend else open_video(str(path))
    manager = SceneManager()
    manager.add_detector(detector)
    manager.detect_scenes(video)
    return [start.frame_num for start, _ in manager.get_scene_list()[1:]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each method per clip; the best counts")
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    truth_file = args.videos / "groundtruth.json"
    if not truth_file.is_file():
        print(f"no {truth_file}: nothing to measure", file=sys.stderr)
        return 1
    clips = json.loads(truth_file.read_text())["clips"]
    methods = ["decode", "segments", "stage", *PYSCENEDETECT]
    totals = {m: {"wall": 0.0, "cpu": 0.0, "tp": 0, "fp": 0, "fn": 0} for m in methods}
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
            runs = {
                "decode": lambda: decode_only(path),
                "segments": lambda: segment_decode_only(path),
                "stage": lambda: this_stage(path, Path(tmp) / path.stem),
                **{method: (lambda m=method: pyscenedetect(path, m)) for method in PYSCENEDETECT},
            }
            measured = {method: [] for method in methods}
            for _ in range(args.repeats):
                for method in methods:
                    measured[method].append(timed(runs[method]))
            decode_wall = min(m[0] for m in measured["decode"])
            for method in methods:
                wall, cpu = min(m[0] for m in measured[method]), min(m[1] for m in measured[method])
                cuts = measured[method][0][2]
                f1 = boundary_f1(cuts, cuts_truth) if cuts is not None else None
                totals[method]["wall"] += wall
                totals[method]["cpu"] += cpu
                if f1:
                    for key, value in zip(("tp", "fp", "fn"), f1[1:]):
                        totals[method][key] += value
                rows.append((name, method, wall, cpu, duration / wall, wall / decode_wall, f1))
    print_table(rows, totals, total_duration)
    if not args.no_memory:
        print_memory()
    return 0


PYSCENEDETECT = ["content", "adaptive", "content-pyav", "adaptive-pyav"]
LABELS = {"decode": "PyAV decode only", "segments": "the stage's split decode only", "stage": "**this stage**",
          "content": "PySceneDetect ContentDetector (OpenCV backend)",
          "adaptive": "PySceneDetect AdaptiveDetector (OpenCV backend)",
          "content-pyav": "PySceneDetect ContentDetector (PyAV backend)",
          "adaptive-pyav": "PySceneDetect AdaptiveDetector (PyAV backend)"}


def print_table(rows, totals, total_duration: float) -> None:
    print("| clip | method | wall s | CPU s | x realtime | wall / decode-only | cut F1 (tp/fp/fn) |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, method, wall, cpu, realtime, ratio, f1 in rows:
        score = "-" if f1 is None else f"{f1[0]:.3f} ({f1[1]}/{f1[2]}/{f1[3]})"
        print(f"| {name} | {LABELS[method]} | {wall:.2f} | {cpu:.2f} | {realtime:.1f} | {ratio:.2f} | {score} |")
    decode = totals["decode"]["wall"]
    for method, t in totals.items():
        if method in ("decode", "segments"):
            score = "-"
        else:
            tp, fp, fn = t["tp"], t["fp"], t["fn"]
            score = f"{2 * tp / max(1, 2 * tp + fp + fn):.3f} ({tp}/{fp}/{fn})"
        print(f"| **all clips** | {LABELS[method]} | {t['wall']:.2f} | {t['cpu']:.2f} | {total_duration / t['wall']:.1f} "
              f"| {t['wall'] / decode:.2f} | {score} |")
    stage = totals["stage"]
    print(f"\nthis stage / decode-only: wall {stage['wall'] / decode:.2f}x, CPU {stage['cpu'] / totals['decode']['cpu']:.2f}x")
    print(f"the stage's split decode alone / decode-only: wall {totals['segments']['wall'] / decode:.2f}x, "
          f"CPU {totals['segments']['cpu'] / totals['decode']['cpu']:.2f}x")
    for method in PYSCENEDETECT:
        print(f"this stage is {totals[method]['wall'] / stage['wall']:.2f}x faster (wall; "
              f"{totals[method]['cpu'] / stage['cpu']:.2f}x less CPU) than {LABELS[method]}")


# VmHWM, not ru_maxrss: on Linux the latter keeps the parent's peak across fork and exec.
MEMORY_PROBE = """
import re, sys
sys.path.insert(0, sys.argv[2])
from skyscript_assets.stages.video.keyframes import EpisodeJob, process_episode
def peak_kib():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
imported = peak_kib()
a = process_episode(EpisodeJob('probe', sys.argv[1], sys.argv[3])).results[0]
print(len(a.shots), len(a.keyframes), imported, peak_kib())
"""


def print_memory() -> None:
    from skimage import data

    from skyscript_assets.demo.synthetic import ShotSpec, render_video

    av.logging.set_level(av.logging.ERROR)  # no encoder chatter in the table
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.camera()]
    print("\n| generated video (640x360, 24 fps) | shots | keyframes | peak RSS after imports MiB | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
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
            print(f"| {minutes} min | {out[0]} | {out[1]} | {int(out[2]) / 1024:.0f} | {int(out[3]) / 1024:.0f} |")


if __name__ == "__main__":
    raise SystemExit(main())

"""Keyframes stage against its baselines, in one run: the shared clips, rendered hard
material and a 720p join of at least a minute; then the CLI as users run it.

Part 1, per clip (in this process, methods interleaved, the median of --repeats runs):
  decode      PyAV decodes every frame, FFmpeg's automatic threading (thread_type AUTO)
  stage       this stage as it runs by default on a CPU (`process_episode`: shots, keyframes,
              quality, JPEGs; TransNetV2 not consulted where there is no CUDA)
  combined    this stage with `learned_shots="on"`: TransNetV2 asked about the small
              isolated changes (what the GPU pods do by default; here on the CPU, onnxruntime)
  content     PySceneDetect 0.7 ContentDetector, default settings, default (OpenCV) backend
  adaptive    PySceneDetect 0.7 AdaptiveDetector, likewise
  transnet    TransNetV2 alone, as published: FFmpeg-scaled 48x27 frames, 100-frame windows
              every 50 frames, a transition where the probability exceeds 0.5 (slow on a
              CPU: measured --transnet-repeats times, 1 by default)
Wall time and CPU time of the process (all threads), and hard-cut F1 at +-1 frame (+-1.5
frames of tolerance on integer frames) against the ground truth: the shared clips'
groundtruth.json, the rendered clips' own, the join's from its parts.

Part 2, the CLI: `skyscript shots JOIN --json` in a fresh process, --cli-runs times,
interleaved with a decode-only pass in this process; medians of the process's wall time
(start-up included), of its start-up and tear-down (process wall minus the stage's own
time, which the CLI reports), and their ratio to decode-only.

Wall times on a shared machine swing with the other jobs' load: medians, not bests, and
the CPU time is the steadier figure.

    python benchmarks/keyframes.py [--videos DIR] [--repeats 3] [--cli-runs 5] [--no-hard] [--only-cli] [--memory]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "video"))  # the hard material's renderer

from skyscript_assets.stages.video.keyframes import (  # noqa: E402
    EpisodeJob,
    KeyframeSettings,
    available_cores,
    process_episode,
)
from skyscript_assets.stages.video.shots import boundary_f1  # noqa: E402

DEFAULT_VIDEOS = ROOT.parent / "shared" / "data" / "videos"
JOIN_PARTS = ("big_buck_bunny_0_30.webm", "chaplin.mp4", "popeye_sinbad_part3.mkv")
METHODS = ("decode", "stage", "combined", "content", "adaptive", "transnet")
LABELS = {
    "decode": "PyAV decode only",
    "stage": "**this stage** (CPU default)",
    "combined": "**this stage, combined** (learned_shots=on)",
    "content": "PySceneDetect ContentDetector",
    "adaptive": "PySceneDetect AdaptiveDetector",
    "transnet": "TransNetV2 alone (threshold 0.5)",
}


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


def this_stage(path: Path, out: Path, learned: str) -> list[int]:
    result = process_episode(EpisodeJob(path.stem, str(path), str(out), KeyframeSettings(learned_shots=learned)))
    if result.losses:
        raise RuntimeError(f"{path}: {result.losses[0].detail}")
    return [s.start_frame for s in result.results[0].shots if s.transition_in == "cut"]


def pyscenedetect(path: Path, method: str) -> list[int]:
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

    manager = SceneManager()
    manager.add_detector({"content": ContentDetector, "adaptive": AdaptiveDetector}[method]())
    manager.detect_scenes(open_video(str(path)))
    return [start.frame_num for start, _ in manager.get_scene_list()[1:]]


def transnet_alone(path: Path) -> list[int]:
    from skyscript_assets.models.shot_boundaries import load_shot_model

    model = load_shot_model("cpu", "onnx", threads=available_cores())
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = np.stack(
            [
                frame.reformat(width=48, height=27, format="rgb24", interpolation="BICUBIC").to_ndarray()
                for frame in container.decode(stream)
            ]
        )
    return transitions(model.video_probabilities(frames))


def transitions(probabilities: np.ndarray, threshold: float = 0.5) -> list[int]:
    """A run of frames above the threshold is one transition (the published
    `predictions_to_scenes`); its most likely frame is where it is."""
    above = np.append(probabilities > threshold, False)
    cuts, start = [], None
    for index, on in enumerate(above):
        if on and start is None:
            start = index
        elif not on and start is not None:
            cuts.append(start + int(np.argmax(probabilities[start:index])))
            start = None
    return cuts


# --- material ---------------------------------------------------------------------------


def shared_clips(videos: Path) -> list[tuple[str, Path, list[int]]]:
    truth_file = videos / "groundtruth.json"
    if not truth_file.is_file():
        return []
    clips = json.loads(truth_file.read_text())["clips"]
    return [(name, videos / name, truth["cut_frames"]) for name, truth in clips.items() if (videos / name).is_file()]


def hard_clips(folder: Path) -> list[tuple[str, Path, list[int]]]:
    from hard_clips import CLIPS, render_clip

    out = []
    for name in CLIPS:
        path = folder / f"hard_{name}.mp4"
        out.append((f"rendered: {name}", path, render_clip(name, path)["cut_frames"]))
    return out


def join_720p(videos: Path, folder: Path) -> tuple[str, Path, list[int]] | None:
    """The shared clips in JOIN_PARTS re-encoded one after the other as one 1280x720 24 fps
    H.264 file (GOPs of 2 s, x264 scene cuts): a join of different sources, ~100 s. Kept in
    the temporary folder between runs (it takes a minute to make)."""
    clips = json.loads((videos / "groundtruth.json").read_text())["clips"]
    if not all((videos / name).is_file() for name in JOIN_PARTS):
        return None
    key = hashlib.sha256(repr([(n, (videos / n).stat().st_size) for n in JOIN_PARTS]).encode()).hexdigest()[:10]
    path = folder / f"join720-{key}.mp4"
    cuts, offset = [], 0
    for name in JOIN_PARTS:
        if offset:
            cuts.append(offset)  # the join itself is a hard cut
        cuts += [offset + frame for frame in clips[name]["cut_frames"]]
        offset += clips[name]["frames"]
    if not path.is_file():
        partial = path.with_suffix(".part.mp4")
        with av.open(str(partial), "w") as out:
            stream = out.add_stream("libx264", rate=24)
            stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
            stream.options = {"crf": "23", "preset": "veryfast", "g": "48"}
            index = 0
            for name in JOIN_PARTS:
                with av.open(str(videos / name)) as source:
                    for frame in source.decode(video=0):
                        picture = frame.reformat(width=1280, height=720, format="yuv420p")
                        picture.pts, picture.time_base = index, Fraction(1, 24)
                        index += 1
                        for packet in stream.encode(picture):
                            out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        os.replace(partial, path)
    return f"720p join ({' + '.join(n.split('.')[0] for n in JOIN_PARTS)})", path, cuts


def duration_of(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration:
            return float(stream.duration * stream.time_base)
        return container.duration / av.time_base


# --- part 1 -----------------------------------------------------------------------------


def measure_clips(clips, repeats: int, transnet_repeats: int, out: Path):
    rows, totals = [], {m: {"wall": 0.0, "cpu": 0.0, "tp": 0, "fp": 0, "fn": 0, "worst": 1.0} for m in METHODS}
    for name, path, truth in clips:
        runs = {
            "decode": lambda: decode_only(path),
            "stage": lambda: this_stage(path, out / "stage", "off"),
            "combined": lambda: this_stage(path, out / "combined", "on"),
            "content": lambda: pyscenedetect(path, "content"),
            "adaptive": lambda: pyscenedetect(path, "adaptive"),
            "transnet": lambda: transnet_alone(path),
        }
        measured = {m: [] for m in METHODS}
        for repeat in range(repeats):
            for method in METHODS:
                if method == "transnet" and repeat >= transnet_repeats:
                    continue
                measured[method].append(timed(runs[method]))
        duration = duration_of(path)
        decode_wall = statistics.median(m[0] for m in measured["decode"])
        for method in METHODS:
            wall = statistics.median(m[0] for m in measured[method])
            cpu = statistics.median(m[1] for m in measured[method])
            cuts = measured[method][0][2]
            f1 = None if cuts is None else boundary_f1(cuts, truth)
            t = totals[method]
            t["wall"], t["cpu"] = t["wall"] + wall, t["cpu"] + cpu
            if f1:
                t["tp"], t["fp"], t["fn"] = t["tp"] + f1[1], t["fp"] + f1[2], t["fn"] + f1[3]
                t["worst"] = min(t["worst"], f1[0])
            rows.append((name, method, wall, cpu, duration, wall / decode_wall, f1, len(measured[method])))
        print(f"  measured {name}", file=sys.stderr, flush=True)
    return rows, totals


def print_clips(rows, totals) -> None:
    print("| clip | method | wall s | CPU s | x realtime | wall / decode | hard-cut F1 (tp/fp/fn) |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, method, wall, cpu, duration, ratio, f1, _ in rows:
        score = "-" if f1 is None else f"{f1[0]:.3f} ({f1[1]}/{f1[2]}/{f1[3]})"
        print(
            f"| {name} | {LABELS[method]} | {wall:.2f} | {cpu:.2f} | {duration / wall:.1f} | {ratio:.2f} | {score} |"
        )
    print("\n| method | F1 overall (tp/fp/fn) | worst clip F1 | wall s | CPU s | wall / decode | CPU / decode |")
    print("|---|---|---:|---:|---:|---:|---:|")
    decode = totals["decode"]
    for method, t in totals.items():
        if method == "decode":
            score, worst = "-", "-"
        else:
            score = f"{2 * t['tp'] / max(1, 2 * t['tp'] + t['fp'] + t['fn']):.3f} ({t['tp']}/{t['fp']}/{t['fn']})"
            worst = f"{t['worst']:.3f}"
        print(
            f"| {LABELS[method]} | {score} | {worst} | {t['wall']:.2f} | {t['cpu']:.2f} | "
            f"{t['wall'] / decode['wall']:.2f} | {t['cpu'] / decode['cpu']:.2f} |"
        )


# --- part 2 -----------------------------------------------------------------------------


def measure_cli(path: Path, runs: int, out: Path) -> None:
    """`skyscript shots` in a fresh process, as a user runs it, against a decode in this one."""
    skyscript = Path(sys.executable).with_name("skyscript")
    command = [str(skyscript)] if skyscript.is_file() else [sys.executable, "-m", "skyscript_assets.cli"]
    cli, startup, stage, cpu, decode, threads = [], [], [], [], [], set()
    for _ in range(runs):
        before = os.times()
        started = time.perf_counter()
        proc = subprocess.run(
            [*command, "--home", str(out / "home"), "shots", str(path), "--out", str(out / "cli"), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        cli.append(time.perf_counter() - started)
        after = os.times()
        cpu.append(after.children_user + after.children_system - before.children_user - before.children_system)
        report = json.loads(proc.stdout)
        stage.append(report["seconds"])
        startup.append(cli[-1] - report["seconds"])
        threads.add(report["decode_threads"])
        decode.append(timed(lambda: decode_only(path))[0])
    decode_wall = statistics.median(decode)
    print(
        f"\n`skyscript shots` on {path.name} ({duration_of(path):.1f} s, 1280x720 H.264), {runs} runs, "
        f"{sorted(threads)} decoder threads:\n"
    )
    print("| | median s | runs |")
    print("|---|---:|---|")
    for label, values in (
        ("PyAV decode only (AUTO threads, in-process)", decode),
        ("`skyscript shots`: process wall time", cli),
        ("... of which the stage itself", stage),
        ("... of which process start-up and exit", startup),
        ("`skyscript shots`: process CPU time", cpu),
    ):
        print(f"| {label} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    ratios = [c / d for c, d in zip(cli, decode)]
    print(
        f"\nCLI wall / decode-only: median of the runs' ratios {statistics.median(ratios):.2f}x "
        f"({', '.join(f'{r:.2f}' for r in ratios)}); ratio of the medians "
        f"{statistics.median(cli) / decode_wall:.2f}x; "
        f"without start-up {statistics.median(stage) / decode_wall:.2f}x"
    )


# --- part 3 -----------------------------------------------------------------------------

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

    av.logging.set_level(av.logging.ERROR)
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.camera()]
    print("\n| generated video (640x360, 24 fps) | shots | keyframes | peak RSS after imports MiB | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in (1, 5, 10):
            shots = []
            for k in range(minutes * 10):
                transition = "start" if k == 0 else ("fade" if k % 10 == 5 else "dissolve" if k % 5 == 3 else "cut")
                shots.append(ShotSpec(photos[k % len(photos)], 6.0, ("static", "pan", "zoom")[k % 3], transition))
            path = Path(tmp) / f"generated_{minutes}min.mp4"
            render_video(path, shots)
            out = subprocess.run(
                [sys.executable, "-c", MEMORY_PROBE, str(path), str(ROOT), str(Path(tmp) / "kf")],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            print(f"| {minutes} min | {out[0]} | {out[1]} | {int(out[2]) / 1024:.0f} | {int(out[3]) / 1024:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each method per clip; the median counts")
    parser.add_argument("--transnet-repeats", type=int, default=1, help="runs of TransNetV2 alone per clip")
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--no-hard", action="store_true", help="leave out the rendered hard material")
    parser.add_argument("--only-cli", action="store_true", help="part 2 alone (the CLI against decode-only)")
    parser.add_argument("--memory", action="store_true", help="peak memory on 1, 5 and 10 minute videos")
    args = parser.parse_args()
    cache = Path(tempfile.gettempdir()) / "skyscript-bench"
    cache.mkdir(exist_ok=True)
    clips = shared_clips(args.videos)
    if not clips:
        print(f"no {args.videos / 'groundtruth.json'}: nothing to measure", file=sys.stderr)
        return 1
    join = join_720p(args.videos, cache)
    with tempfile.TemporaryDirectory() as tmp:
        if args.only_cli:
            if join:
                measure_cli(join[1], args.cli_runs, Path(tmp))
            return 0 if join else 1
        if not args.no_hard:
            clips += hard_clips(Path(tmp))
        if join:
            clips.append(join)
        print(
            f"{len(clips)} clips, {args.repeats} runs each ({args.transnet_repeats} of TransNetV2 alone), "
            f"{available_cores()} cores; medians\n"
        )
        rows, totals = measure_clips(clips, args.repeats, args.transnet_repeats, Path(tmp))
        print_clips(rows, totals)
        if join:
            measure_cli(join[1], args.cli_runs, Path(tmp))
    if args.memory:
        print_memory()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

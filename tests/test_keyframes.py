"""Shot boundaries and keyframes: synthetic videos with exactly known transitions, the real
clips against their hand-checked ground truth, geometry, quality verdicts, the CLI."""

import ctypes
import json
import resource
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from skyscript_assets.demo.synthetic import ShotSpec, render_video
from skyscript_assets.stages.video.keyframes import (
    EpisodeJob,
    KeyframeSettings,
    extract_keyframes,
    keep_freed_memory,
    process_episode,
)

PHOTOS = {name: getattr(skimage.data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket", "camera")}


def _extract(path: Path, out: Path, **settings):
    return process_episode(EpisodeJob(path.stem, str(path), str(out), KeyframeSettings(**settings))).results[0]


def test_cuts_fades_and_dissolves_are_found_where_they_are(tmp_path):
    shots = [
        ShotSpec(PHOTOS["astronaut"], 1.5, "zoom"),
        ShotSpec(PHOTOS["coffee"], 1.5, "pan", "cut"),
        ShotSpec(PHOTOS["chelsea"], 1.5, "static", "fade"),
        ShotSpec(PHOTOS["rocket"], 1.5, "zoom", "dissolve"),
        ShotSpec(PHOTOS["camera"], 1.5, "static", "cut"),
    ]
    truth = render_video(tmp_path / "v.mp4", shots, size=(320, 180), transition_frames=10)
    result = _extract(tmp_path / "v.mp4", tmp_path / "kf")
    assert [s.transition_in for s in result.shots] == ["start", "cut", "fade", "dissolve", "cut"]
    starts = [s.start_frame for s in result.shots]
    cut_shots = [i for i, s in enumerate(result.shots) if s.transition_in == "cut"]
    assert [starts[i] for i in cut_shots] == truth["cut_frames"]  # frame-exact
    for (first, last, kind), shot in zip(truth["gradual_frames"], [result.shots[2], result.shots[3]]):
        assert shot.transition_in == kind and first <= shot.start_frame <= last + 1
    # Shots tile the video, and boundaries are presentation times.
    assert result.shots[0].start_s == 0 and result.shots[-1].end_frame == truth["frames"] - 1
    for a, b in zip(result.shots, result.shots[1:]):
        assert a.end_frame + 1 == b.start_frame and b.start_s == pytest.approx(b.start_frame / 24, abs=1e-6)


def _with_flash(frames_rgb, at, length):
    out = [f.copy() for f in frames_rgb]
    for i in range(at, at + length):
        out[i] = np.clip(out[i].astype(int) + 180, 0, 255).astype(np.uint8)
    return out


def _write_frames(path, frames, fps=24, codec="libx264", pix_fmt="yuv420p"):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_flashes_and_occlusions_are_not_cuts(tmp_path):
    base = cv2.resize(PHOTOS["coffee"], (320, 180))
    frames = [np.roll(base, i, axis=1) for i in range(72)]  # a slow pan
    frames = _with_flash(frames, 20, 2)  # a muzzle flash
    for i in range(44, 50):  # something dark passes in front of the lens
        frames[i] = frames[i].copy()
        frames[i][:, : 60 + 40 * (i - 44)] = 15
    _write_frames(tmp_path / "traps.mp4", frames)
    result = _extract(tmp_path / "traps.mp4", tmp_path / "kf")
    assert [s.transition_in for s in result.shots] == ["start"]


def test_long_shots_get_more_keyframes_and_every_shot_one(tmp_path):
    shots = [ShotSpec(PHOTOS["astronaut"], 9.0, "pan"), ShotSpec(PHOTOS["coffee"], 0.5, "static", "cut")]
    render_video(tmp_path / "v.mp4", shots, size=(320, 180))
    result = _extract(tmp_path / "v.mp4", tmp_path / "kf", seconds_per_keyframe=3.0)
    per_shot = [sum(k.shot_index == s.index for k in result.keyframes) for s in result.shots]
    assert per_shot == [3, 1]
    for k in result.keyframes:
        shot = result.shots[k.shot_index]
        assert shot.start_s <= k.time_s < shot.end_s and Path(k.path).is_file()


def test_keyframes_have_display_geometry_with_a_bounded_long_side(tmp_path):
    render_video(
        tmp_path / "r.mp4",
        [ShotSpec(PHOTOS["astronaut"], 1.0)],
        size=(400, 240),
        rotation=90,
        sample_aspect_ratio=Fraction(4, 3),
    )
    result = _extract(tmp_path / "r.mp4", tmp_path / "kf", max_long_side=256)
    # 400x240 with SAR 4:3 shows as 533x240; turned 90 degrees, 240x533; long side bounded to 256.
    assert (result.width, result.height) == (116, 256)
    image = cv2.imread(result.keyframes[0].path)
    assert image.shape[:2] == (256, 116)


@pytest.mark.parametrize(("codec", "pix_fmt", "suffix"), [("libx264", "yuv420p", "mp4"), ("png", "rgb24", "mov")])
def test_keyframe_colours_are_those_of_the_video(tmp_path, codec, pix_fmt, suffix):
    # Limited-range YUV (black at 16, white at 235) and RGB-coded video both come out with
    # black at 0 and white at 255; a cut between two colour fields is found either way.
    left = np.zeros((160, 256, 3), np.uint8)
    left[:, 128:] = 255
    colour = np.zeros((160, 256, 3), np.uint8)
    colour[:80], colour[80:, :128], colour[80:, 128:] = (220, 30, 30), (30, 200, 30), (30, 30, 220)
    path = tmp_path / f"c.{suffix}"
    _write_frames(path, [left] * 24 + [colour] * 24, codec=codec, pix_fmt=pix_fmt)
    result = _extract(path, tmp_path / "kf")
    assert [s.start_frame for s in result.shots] == [0, 24]
    first, second = (cv2.cvtColor(cv2.imread(k.path), cv2.COLOR_BGR2RGB) for k in result.keyframes[:2])
    assert first[80, 40].max() <= 8 and first[80, 200].min() >= 247
    assert np.abs(second[40, 128].astype(int) - (220, 30, 30)).max() <= 12
    assert np.abs(second[120, 64].astype(int) - (30, 200, 30)).max() <= 12


def test_quality_filter_reasons(tmp_path):
    black = np.zeros((180, 320, 3), np.uint8)
    flat = np.full((180, 320, 3), 128, np.uint8)
    shots = [
        ShotSpec(PHOTOS["astronaut"], 1.0),
        ShotSpec(black, 1.0, "static", "cut"),
        ShotSpec(PHOTOS["rocket"], 1.0, "static", "cut"),
        ShotSpec(flat, 1.0, "static", "cut"),
        ShotSpec(PHOTOS["camera"], 8.5, "static", "cut"),
    ]
    render_video(tmp_path / "q.mp4", shots, size=(320, 180))
    result = _extract(tmp_path / "q.mp4", tmp_path / "kf")
    verdicts = [(k.shot_index, k.invalid_reason) for k in result.keyframes]
    assert (0, None) in verdicts and (2, None) in verdicts
    assert {reason for shot, reason in verdicts if shot in (1, 3)} <= {"black", "uniform"} and (1, "black") in verdicts
    static_long = [reason for shot, reason in verdicts if shot == 4]
    assert static_long[0] is None and "near_duplicate" in static_long[1:]


def test_blurred_frames_lose_to_sharp_ones_and_a_blurred_keyframe_is_flagged(tmp_path):
    sharp = cv2.resize(PHOTOS["astronaut"], (320, 180))
    frames = [cv2.GaussianBlur(sharp, (0, 0), 6)] * 40 + [sharp] * 8 + [cv2.GaussianBlur(sharp, (0, 0), 6)] * 48
    _write_frames(tmp_path / "b.mp4", frames)
    result = _extract(tmp_path / "b.mp4", tmp_path / "kf", seconds_per_keyframe=2.0)
    first = result.keyframes[0]
    assert 40 <= first.frame < 48 and first.valid  # the sharp stretch near the window centre wins
    assert any(k.invalid_reason == "blurred" for k in result.keyframes[1:])


def _f1(pred, truth, tolerance=1):
    used, hits = set(), 0
    for p in pred:
        match = next((t for t in truth if abs(t - p) <= tolerance and t not in used), None)
        if match is not None:
            used.add(match)
            hits += 1
    return hits, len(pred), len(truth)


def test_hard_cut_f1_on_the_shared_clips(shared_videos, tmp_path):
    truth = json.loads((shared_videos / "groundtruth.json").read_text())["clips"]
    totals = np.zeros(3)
    for name, clip in truth.items():
        result = extract_keyframes(str(shared_videos / name), lambda n, d: n)
        cuts = [s.start_frame for s in result.shots if s.transition_in == "cut"]
        totals += _f1(cuts, clip["cut_frames"])
        assert result.frames == clip["frames"], name
    hits, predicted, actual = totals
    precision, recall = hits / predicted, hits / actual
    assert 2 * precision * recall / (precision + recall) >= 0.95


def test_cli_shots_json_is_one_object_and_bad_input_one_line(tmp_path):
    render_video(
        tmp_path / "v.mp4",
        [ShotSpec(PHOTOS["coffee"], 1.0), ShotSpec(PHOTOS["rocket"], 1.0, "static", "cut")],
        size=(160, 96),
    )
    cmd = [sys.executable, "-m", "skyscript_assets.cli", "--home", str(tmp_path / "h"), "shots"]
    proc = subprocess.run(
        [*cmd, str(tmp_path / "v.mp4"), "--out", str(tmp_path / "o"), "--json", "--decode-threads", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(proc.stdout)  # exactly one JSON document
    assert set(report) == {
        "video",
        "duration_s",
        "fps",
        "width",
        "height",
        "seconds",
        "decode_threads",
        "learned_shots",
        "judged",
        "rescued",
        "shots",
        "keyframes",
    }
    assert report["decode_threads"] == 2 and report["seconds"] > 0
    assert [s["transition_in"] for s in report["shots"]] == ["start", "cut"]
    assert report["shots"][1]["start_frame"] == 24 and report["shots"][1]["start_s"] == pytest.approx(1.0)
    assert set(report["keyframes"][0]) == {
        "shot_index",
        "time_s",
        "frame",
        "valid",
        "invalid_reason",
        "path",
        "width",
        "height",
    }
    (tmp_path / "bad.mp4").write_text("not a video")
    bad = subprocess.run([*cmd, str(tmp_path / "bad.mp4"), "--json"], capture_output=True, text=True)
    assert bad.returncode != 0 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "bad.mp4" in bad.stderr and "Traceback" not in bad.stderr
    negative = subprocess.run(
        [*cmd, str(tmp_path / "v.mp4"), "--decode-threads", "-1"], capture_output=True, text=True
    )
    assert negative.returncode != 0 and "--decode-threads" in negative.stderr and "Traceback" not in negative.stderr


def test_keyframes_from_a_file_object_and_a_path_are_the_same(tmp_path):
    video = tmp_path / "v.mp4"
    render_video(
        video,
        [ShotSpec(skimage.data.astronaut(), 1.0, "pan"), ShotSpec(skimage.data.coffee(), 1.0, "zoom", "cut")],
        size=(160, 96),
    )
    results = []
    for threads in (1, 2):
        with open(video, "rb") as source:
            r = extract_keyframes(source, lambda name, data: name, KeyframeSettings(decode_threads=threads))
        results.append(
            (
                [(s.start_frame, s.end_frame, s.transition_in) for s in r.shots],
                [(k.frame, k.valid, k.sharpness) for k in r.keyframes],
                r.frames,
            )
        )
    results.append(results[0][:2] + (extract_keyframes(str(video), lambda name, data: name).frames,))
    assert results[0] == results[1] == results[2] and results[0][2] == 48


def test_freed_frame_sized_memory_is_reused_without_page_faults():
    # What the stage asks of glibc: a freed frame buffer is kept, and the next one is
    # written into pages already mapped instead of fresh ones (each a page fault).
    if not keep_freed_memory():
        pytest.skip("the C library is not glibc")
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = (
        ctypes.c_void_p,
        [ctypes.c_size_t],
        [ctypes.c_void_p],
    )
    size = 12 * 2**20  # a 4K 4:2:0 frame
    first = libc.malloc(size)
    ctypes.memset(first, 1, size)
    libc.free(first)
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    second = libc.malloc(size)
    ctypes.memset(second, 2, size)
    faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
    libc.free(second)
    assert faults < size // 4096 // 20, f"{faults} page faults writing a reused {size >> 20} MiB block"

"""Keyframes of an episode in one streaming decode: shots, the sharpest frame near each
chosen position, and a quality verdict for each keyframe.

    result = extract_keyframes(source, write_jpeg=..., settings=KeyframeSettings())

Each shot is cut into windows of `seconds_per_keyframe` from its start; every window (and a
tail of at least half a window, or the whole shot when it is shorter) gets one keyframe:
among the candidate frames sampled in the window (a few per second, at display geometry),
the sharpest one weighted by its closeness to the window's centre, avoiding fades and
dissolves. Candidates are dropped as soon as their window is decided, so memory stays flat
however long the episode is.

Shot boundaries come from `shots.ShotBoundaryDetector`; with `learned_shots` "on" (or
"auto" where CUDA is) TransNetV2 (`models/shot_boundaries.py`) is its second opinion on the
changes too small for a cut, fed the 48x27 picture of every frame made in the decoder
threads.

The quality filter marks a keyframe invalid, with a reason, when it is black or a flat
colour, blurred (against the sharpness of its own shot), low in information, a near-copy of
the previous keyframe (perceptual hash), or inside a transition. Invalid keyframes are
kept (valid = False) so the catalog shows what was filtered and why.

Decoding is split over the cores by `segment_decode.analysed_frames` (segments of whole
GOPs, one single-threaded decoder each); the per-frame features and candidate sharpness
are computed in those decoder threads, and everything that needs the order of the frames
(shot boundaries, windows, the choice and the JPEGs) here, in the caller's thread. The
result does not depend on the number of decoder threads.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from skyscript_assets.schema import LossRecord
from skyscript_assets.stages.ingest.probe import ProbeError, normalise_rotation
from skyscript_assets.stages.step import EpisodeResult
from skyscript_assets.stages.video.pixel_stats import laplacian_variance
from skyscript_assets.stages.video.segment_decode import analysed_frames
from skyscript_assets.stages.video.shots import (
    JUDGE_AT,
    Boundary,
    FrameFeatures,
    ShotBoundaryDetector,
    _plane,
    features_from_frame,
)

STAGE = "keyframes"
# 2: candidates on a time grid; JPEGs from swscale bgr24. 3: flickers told from cutaways over
# ~1 s; TransNetV2 as a second opinion on small isolated changes (where CUDA is, by default)
STAGE_VERSION = "3"
LEARNED_SHOTS = ("auto", "on", "off")


@dataclass(frozen=True)
class KeyframeSettings:
    seconds_per_keyframe: float = 4.0
    candidates_per_second: float = 4.0
    max_long_side: int = 768
    jpeg_quality: int = 90
    blur_ratio: float = 0.35  # below this share of the shot's median sharpness: blurred
    min_sharpness: float = 8.0  # Laplacian variance under which any frame is blurred
    black_luma: float = 20.0
    uniform_spread: float = 6.0
    min_entropy_bits: float = 3.0
    duplicate_hamming: int = 5  # of 64 dHash bits
    decode_threads: int = 0  # decoders per episode, each on a segment of whole GOPs; 0: see decode_threads()
    # TransNetV2 as a second opinion on the changes too small for a cut (`shots.py`): "auto"
    # where CUDA is (GPU pods), "on" (on the CPU too: ~1 s of CPU for each change it is asked
    # about), "off"
    learned_shots: str = "auto"

    def __post_init__(self) -> None:
        if self.learned_shots not in LEARNED_SHOTS:
            raise ValueError(f"learned_shots {self.learned_shots!r}: use one of {', '.join(LEARNED_SHOTS)}")


@dataclass(frozen=True)
class ShotRecord:
    index: int
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    transition_in: str  # start, cut, fade, dissolve


@dataclass(frozen=True)
class KeyframeRecord:
    shot_index: int
    keyframe_index: int
    time_s: float
    frame: int
    valid: bool
    invalid_reason: str | None
    width: int
    height: int
    sharpness: float
    path: str


@dataclass
class EpisodeKeyframes:
    duration_s: float = 0.0
    frames: int = 0
    fps: float = 0.0
    width: int = 0  # display geometry of the keyframes
    height: int = 0
    shots: list[ShotRecord] = field(default_factory=list)
    keyframes: list[KeyframeRecord] = field(default_factory=list)
    boundaries: list[Boundary] = field(default_factory=list)
    decode_errors: int = 0
    seconds: float = 0.0
    learned_shots: str = "off"  # the second opinion used: "off", or the model and where it ran
    judged: int = 0  # changes the second opinion was asked about
    rescued: int = 0  # ... and made cuts


@dataclass
class _Candidate:
    """A sampled frame kept cheaply (the decoded frame itself, or a copy scaled to the
    keyframe size for 4K/8K and non-8-bit formats) until its window is decided; only the
    chosen one is converted to a colour image (BGR, as OpenCV encodes it)."""

    frame: int
    time_s: float
    picture: av.VideoFrame | None
    bgr: np.ndarray | None  # the chosen one at display geometry, in OpenCV's channel order
    sharpness: float


@dataclass
class _OpenShot:
    index: int
    start_frame: int
    start_s: float
    transition_in: str
    transition_until_s: float  # candidates before this are inside the incoming transition
    window_start_s: float
    keyframes: int = 0
    sharpness: list[float] = field(default_factory=list)


def keyframe_size(width: int, height: int, sar: float, max_long_side: int) -> tuple[int, int]:
    """Size to decode candidates at, before rotation: SAR applied, long side bounded, even."""
    display_w = width * (sar if sar > 0 else 1.0)
    scale = min(1.0, max_long_side / max(display_w, height))
    return max(2, int(round(display_w * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def extract_keyframes(
    source,
    write_jpeg: Callable[[str, bytes], str],
    settings: KeyframeSettings = KeyframeSettings(),
    *,
    name: str | None = None,
) -> EpisodeKeyframes:
    """Decode `source` once; `write_jpeg(file_name, data)` stores a keyframe and returns its path."""
    label = name or str(source)
    started = time.perf_counter()
    keep_freed_memory()
    # The decoders keep the cores busy; OpenCV's own thread pool on these small images
    # only adds hand-offs between threads (measured: ~7 % more CPU).
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        result = _extract(source, write_jpeg, settings, label)
    finally:
        cv2.setNumThreads(opencv_threads)
    result.seconds = time.perf_counter() - started
    return result


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc keep freed memory for reuse instead of handing it back to the system
    (once per process; False where the C library is not glibc).

    Each decoder fills a pool of zeroed frame buffers, and the candidates held until their
    window is decided make the pools grow. With glibc's defaults those buffers are fresh
    pages every time (big blocks are mapped and unmapped, heap tops trimmed), and a fresh
    page costs ~2.6 µs to fault in on a VM, against 0.16 µs to write a page already mapped:
    ~80k page faults a pass over the shared clips (~0.25 s of CPU), ~29k with this. Blocks
    up to 32 MiB (a 4K 10-bit frame) come from the heap, which is trimmed only above 1 GiB
    free; a worker's memory stays at its peak, which the decode budget bounds."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(mallopt(m_mmap_threshold, 32 * 2**20)) and bool(mallopt(m_trim_threshold, 2**30))


MAX_AUTO_DECODE_THREADS = 4  # more buys little: the in-order analysis in the calling thread becomes the limit


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, and a container's CPU quota
    (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`) when that is lower. A Kubernetes pod with
    a CPU limit sees all of the node's cores in its affinity and in `os.cpu_count()`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, int(quota + 0.5))) if quota else max(1, cores)


def _cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    try:
        with open(f"{root}/cpu.max") as f:  # v2: "max 100000" or "200000 100000"
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open(f"{root}/cpu/cpu.cfs_quota_us") as f, open(f"{root}/cpu/cpu.cfs_period_us") as g:
            quota_us, period_us = int(f.read()), int(g.read())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def decode_threads(requested: int = 0, episodes_at_once: int = 1) -> int:
    """Decoder threads for one episode: `requested`, or (0) this process's share of the
    cores when `episodes_at_once` episodes run side by side, at least 2 where there are 2
    cores (so the split decode engages however many episodes share them: the last episodes
    of a drama then still use the cores the finished ones left), at most 4."""
    if requested > 0:
        return requested
    cores = available_cores()
    return max(min(2, cores), min(MAX_AUTO_DECODE_THREADS, cores // max(1, episodes_at_once)))


def episode_processes(episodes: int, requested: int = 0) -> int:
    """Episodes decoded side by side: `requested`, or (0) one per two cores (each then splits
    its decode over two), never more than there are episodes."""
    wanted = requested if requested > 0 else max(1, available_cores() // 2)
    return max(1, min(episodes, wanted))


def learned_judge(mode: str) -> tuple[Callable[[np.ndarray], float] | None, str]:
    """The second opinion for `KeyframeSettings.learned_shots`, and what it is.

    "auto": TransNetV2 on CUDA where there is CUDA and the model is installed, else none;
    "on": TransNetV2 where CUDA is, else on the CPU (raises `WeightsMissing` when not
    installed); "off": none. The model is loaded once per process."""
    if mode == "off":
        return None, "off"
    from skyscript_assets.models.base import WeightsMissing
    from skyscript_assets.models.shot_boundaries import cuda_present, load_shot_model

    if mode == "auto":
        if not cuda_present():
            return None, "off (auto: no CUDA)"
        try:
            model = load_shot_model("cuda")
        except WeightsMissing as exc:
            return None, f"off (auto: {exc})"
    else:
        model = load_shot_model("auto")

    def judge(window: np.ndarray) -> float:
        # TransNetV2 may put a cut one frame off the pixels' change: the best of three.
        return float(model.window_probabilities(window[None])[0, JUDGE_AT - 1 : JUDGE_AT + 2].max())

    return judge, f"{model.model_id} ({model.backend}, {model.device})"


def _extract(source, write_jpeg, settings: KeyframeSettings, label: str) -> EpisodeKeyframes:
    try:
        container = av.open(source)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ProbeError("unreadable", f"{label}: cannot open as a video ({detail})") from None
    with container:
        if not container.streams.video or container.streams.video[0].codec_context is None:
            raise ProbeError("no_video_stream", f"{label}: no decodable video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 25.0
        sar = float(stream.sample_aspect_ratio or 1)
        judge, learned = learned_judge(settings.learned_shots)
        run = _EpisodeRun(settings, fps, write_jpeg, judge)
        run.result.learned_shots = learned
        run.size = keyframe_size(stream.codec_context.width, stream.codec_context.height, sar, settings.max_long_side)
        analyse = _FrameAnalyser(
            float(stream.time_base or 0) or None,
            fps,
            settings.candidates_per_second,
            run.size,
            small=judge is not None,
        )
        index = -1
        try:
            workers = decode_threads(settings.decode_threads)
            for analysed in analysed_frames(container, stream, analyse, workers=workers):
                index += 1
                if index == 0:
                    run.rotation = analysed.rotation
                run.push(analysed, index)
        except av.error.FFmpegError:
            run.result.decode_errors += 1  # a damaged tail: keep what decoded
        if index < 0:
            raise ProbeError("no_frames", f"{label}: no decodable frame")
        return run.finish()


@dataclass
class _AnalysedFrame:
    """What a decoder thread makes of one frame: its features, and the frame itself when it
    is a keyframe candidate. Its number and time in the episode are set by the consumer."""

    time_s: float | None  # presentation time, None without a timestamp
    features: FrameFeatures
    candidate: _Candidate | None
    rotation: int


class _FrameAnalyser:
    """The per-frame work, run in the decoder threads (`segment_decode.analysed_frames`).

    Candidates are the frames nearest to a grid of `candidates_per_second` points in
    presentation time: decided from the frame's own timestamp, so any split of the episode
    into segments samples the same frames (and a variable frame rate samples by time)."""

    def __init__(
        self,
        time_base: float | None,
        fps: float,
        candidates_per_second: float,
        size: tuple[int, int],
        small: bool = False,
    ):
        self.time_base, self.fps, self.grid, self.size = time_base, fps, candidates_per_second, size
        self.small = small  # the 48x27 picture of every frame, for the learned judge
        self.half_frame = 0.5 / fps
        self.sample_every = max(1, int(round(fps / candidates_per_second)))  # frames without timestamps
        self.previous = threading.local()  # each decoder thread's last frame in its segment

    def __call__(self, frame, number: int) -> tuple[_AnalysedFrame, int]:
        time_s = float(frame.pts * self.time_base) if frame.pts is not None and self.time_base else None
        if time_s is None:
            sample = number % self.sample_every == 0
        else:
            offset = time_s - round(time_s * self.grid) / self.grid
            sample = -self.half_frame <= offset < self.half_frame
        # The distance to the frame before and a candidate's sharpness come in the same
        # compiled call as the features; a 4K/8K candidate is measured after scaling (and a
        # non-8-bit-planar one gets no sharpness there either: `_candidate` scales both).
        measure_here = sample and frame.width <= 2 * self.size[0]
        features = features_from_frame(
            frame,
            number,
            time_s or 0.0,
            previous=self.previous.features if number > 0 else None,
            sharpness_step=_sharpness_step(frame.width) if measure_here else 0,
            small=self.small,
        )
        self.previous.features = features
        candidate = self._candidate(frame, time_s, features.sharpness) if sample else None
        rotation = normalise_rotation(getattr(frame, "rotation", 0)) if number == 0 else 0
        weight = features.thumb.nbytes + features.hist.nbytes + (features.small.nbytes if self.small else 0)
        if candidate is not None:
            weight += sum(plane.buffer_size for plane in candidate.picture.planes)
        return _AnalysedFrame(time_s, features, candidate, rotation), weight

    def _candidate(self, frame, time_s: float | None, sharpness: float | None) -> _Candidate:
        if sharpness is None:
            # 4K/8K: keep candidates near the output size, not 50 MB each; 10-bit, RGB, NV12:
            # 8-bit planar once, so sharpness reads a luma plane like everywhere else.
            width, height = self.size
            frame = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA", threads=1)
            sharpness = laplacian_variance(_plane(frame.planes[0]), _sharpness_step(width))
        # Else the decoded frame itself is kept: PyAV hands out a new reference-counted
        # frame each time, so holding it costs no copy.
        return _Candidate(-1, time_s or 0.0, frame, None, sharpness)


class _EpisodeRun:
    def __init__(self, settings: KeyframeSettings, fps: float, write_jpeg, judge=None):
        self.settings = settings
        self.detector = ShotBoundaryDetector(fps=fps, judge=judge)
        self.write_jpeg = write_jpeg
        # One swscale context for the episode's keyframes (PyAV makes a new one per frame
        # otherwise), on this thread: the decoders already keep the cores busy.
        self.reformatter = VideoReformatter()
        self.result = EpisodeKeyframes(fps=round(fps, 6))
        self.size = (0, 0)
        self.rotation = 0
        self.times: deque = deque(maxlen=self.detector.lookahead + 2)
        self.candidates: list[_Candidate] = []
        self.shot = _OpenShot(0, 0, 0.0, "start", 0.0, 0.0)
        self.seen_boundaries = 0
        self.previous_hash: np.ndarray | None = None
        self.last_time_s = 0.0
        self.last_frame = -1

    # -- streaming ----------------------------------------------------------------------

    def push(self, analysed: _AnalysedFrame, index: int) -> None:
        time_s = analysed.time_s if analysed.time_s is not None else index / self.detector.fps
        features = analysed.features
        features.index, features.time_s = index, time_s
        self.detector.push(features)
        self.times.append(time_s)
        self.last_time_s, self.last_frame = time_s, index
        if analysed.candidate is not None:
            analysed.candidate.frame, analysed.candidate.time_s = index, time_s
            self.candidates.append(analysed.candidate)
        self._take_new_boundaries()
        # Frames older than the detector's lookahead can no longer gain a boundary.
        if len(self.times) == self.times.maxlen:
            self._close_windows(until_s=self.times[0])

    def finish(self) -> EpisodeKeyframes:
        self.detector.finish()
        self._take_new_boundaries()
        frame_duration = 1.0 / self.result.fps if self.result.fps else 0.0
        end_s = self.last_time_s + frame_duration
        self._close_shot(end_s, self.last_frame, next_boundary=None)
        self.result.frames = self.last_frame + 1
        self.result.duration_s = round(end_s, 6)
        self.result.boundaries = list(self.detector.boundaries)
        self.result.judged, self.result.rescued = self.detector.judged, self.detector.rescued
        self.result.width, self.result.height = self._display_size()
        return self.result

    def _take_new_boundaries(self) -> None:
        for boundary in self.detector.boundaries[self.seen_boundaries :]:
            self._close_shot(boundary.time_s, boundary.frame - 1, next_boundary=boundary)
            self.shot = _OpenShot(
                self.shot.index + 1,
                boundary.frame,
                boundary.time_s,
                boundary.kind,
                boundary.gradual_end_s or boundary.time_s,
                boundary.time_s,
            )
        self.seen_boundaries = len(self.detector.boundaries)

    # -- windows and shots --------------------------------------------------------------

    def _close_windows(self, until_s: float) -> None:
        step = self.settings.seconds_per_keyframe
        while self.shot.window_start_s + step <= until_s:
            window_end = self.shot.window_start_s + step
            self._choose(self.shot.window_start_s, window_end, transition_out_s=None)
            self.shot.window_start_s = window_end

    def _close_shot(self, end_s: float, end_frame: int, next_boundary: Boundary | None) -> None:
        shot = self.shot
        transition_out = next_boundary.gradual_start_s if next_boundary and next_boundary.gradual_start_s else None
        self._close_windows(until_s=end_s)
        tail = end_s - shot.window_start_s
        if shot.keyframes == 0 or tail >= self.settings.seconds_per_keyframe / 2:
            self._choose(shot.window_start_s, end_s, transition_out_s=transition_out, force=shot.keyframes == 0)
        self.candidates = [c for c in self.candidates if c.time_s >= end_s]
        self.result.shots.append(
            ShotRecord(
                shot.index,
                round(shot.start_s, 6),
                round(end_s, 6),
                shot.start_frame,
                max(shot.start_frame, end_frame),
                shot.transition_in,
            )
        )

    def _choose(self, start_s: float, end_s: float, transition_out_s: float | None, force: bool = False) -> None:
        inside = [c for c in self.candidates if start_s <= c.time_s < end_s]
        self.candidates = [c for c in self.candidates if c.time_s >= end_s]
        self.shot.sharpness.extend(c.sharpness for c in inside)
        if not inside:
            return
        centre = (start_s + end_s) / 2
        half = max((end_s - start_s) / 2, 1e-6)

        def in_transition(c: _Candidate) -> bool:
            return c.time_s < self.shot.transition_until_s or (
                transition_out_s is not None and c.time_s >= transition_out_s
            )

        clean = [c for c in inside if not in_transition(c)] or inside
        best = max(clean, key=lambda c: c.sharpness * (1.0 - 0.5 * min(1.0, abs(c.time_s - centre) / half)))
        reason = self._quality(best, in_transition(best))
        self._emit(best, reason)

    def _quality(self, candidate: _Candidate, in_transition: bool) -> str | None:
        s = self.settings
        candidate.bgr = self._display_bgr(candidate)
        gray = cv2.cvtColor(candidate.bgr, cv2.COLOR_BGR2GRAY)
        mean, std = cv2.meanStdDev(gray)  # one pass, no float copy of the image
        luma, spread = float(mean[0, 0]), float(std[0, 0])
        frame_hash = _dhash(gray)
        duplicate = (
            self.previous_hash is not None
            and int(np.count_nonzero(frame_hash != self.previous_hash)) <= s.duplicate_hamming
        )
        self.previous_hash = frame_hash
        if luma < s.black_luma and spread < 4 * s.uniform_spread:
            return "black"  # dark and flat; a starry sky is dark but not flat
        if spread < s.uniform_spread:
            return "uniform"
        if in_transition:
            return "in_transition"
        median = float(np.median(self.shot.sharpness)) if self.shot.sharpness else candidate.sharpness
        if candidate.sharpness < s.min_sharpness or candidate.sharpness < s.blur_ratio * median:
            return "blurred"
        if _entropy_bits(gray) < s.min_entropy_bits:
            return "low_information"
        if duplicate:
            return "near_duplicate"
        return None

    def _emit(self, candidate: _Candidate, reason: str | None) -> None:
        ok, jpeg = cv2.imencode(".jpg", candidate.bgr, [cv2.IMWRITE_JPEG_QUALITY, self.settings.jpeg_quality])
        number = len(self.result.keyframes)
        path = self.write_jpeg(f"shot{self.shot.index:04d}-kf{number:04d}.jpg", jpeg.tobytes())
        height, width = candidate.bgr.shape[:2]
        self.result.keyframes.append(
            KeyframeRecord(
                self.shot.index,
                number,
                round(candidate.time_s, 6),
                candidate.frame,
                reason is None,
                reason,
                width,
                height,
                round(candidate.sharpness, 3),
                path,
            )
        )
        self.shot.keyframes += 1

    # -- pixels -------------------------------------------------------------------------

    def _display_bgr(self, candidate: _Candidate) -> np.ndarray:
        """The candidate at display geometry. swscale scales and converts in one pass and
        honours the video's range (limited-range black 16 becomes RGB 0)."""
        width, height = self.size
        bgr = self.reformatter.reformat(
            candidate.picture, width=width, height=height, format="bgr24", interpolation="AREA", threads=1
        ).to_ndarray()
        candidate.picture = None
        if self.rotation:
            bgr = np.ascontiguousarray(np.rot90(bgr, k=self.rotation // 90))  # display matrix: counter-clockwise
        return bgr

    def _display_size(self) -> tuple[int, int]:
        width, height = self.size
        return (height, width) if self.rotation % 180 == 90 else (width, height)


SHARPNESS_WIDTH = 384


def _sharpness_step(width: int) -> int:
    """Sharpness is the Laplacian variance of the luma on a fixed scale: every step-th pixel,
    no filtering (cheap, and consistent within an episode, which is all a relative blur
    test needs)."""
    return max(1, width // SHARPNESS_WIDTH)


def _dhash(gray: np.ndarray) -> np.ndarray:
    # 8x8 bilinear samples averaged per cell: the cell means of a direct INTER_AREA resize
    # within a few levels, at 1 % of its cost (OpenCV's area path for large ratios is slow).
    sampled = cv2.resize(gray, (9 * 8, 8 * 8), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(sampled, (9, 8), interpolation=cv2.INTER_AREA)
    return (small[:, 1:] > small[:, :-1]).reshape(-1)


def _entropy_bits(gray: np.ndarray) -> float:
    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).reshape(-1).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


# --- one episode, as a worker process runs it ---------------------------------------------


@dataclass(frozen=True)
class EpisodeJob:
    episode_id: str
    video_uri: str  # local path or fsspec URL
    output_uri: str  # folder (local path or fsspec URL) for this episode's JPEGs
    settings: KeyframeSettings = KeyframeSettings()


def process_episode(job: EpisodeJob) -> EpisodeResult[EpisodeKeyframes]:
    """Extract one episode's keyframes into `job.output_uri`; never raises for a bad video.

    The folder is emptied first, so a re-run leaves no stale JPEG from an earlier attempt;
    each JPEG is written under a temporary name and moved into place."""
    from skyscript_assets.storage import full_uri, open_fs

    fs, folder = open_fs(job.output_uri)
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    fs.makedirs(folder, exist_ok=True)

    def write_jpeg(file_name: str, data: bytes) -> str:
        path = f"{folder}/{file_name}"
        with fs.open(path + ".tmp", "wb") as f:
            f.write(data)
        fs.mv(path + ".tmp", path)
        return full_uri(fs, path)

    try:
        video_fs, video_path = open_fs(job.video_uri)
        if "file" in video_fs.protocol and os.path.isfile(video_path):
            # A local file: FFmpeg reads it itself, not through Python calls that need the GIL
            # ("file:" so that no part of the name is taken for another FFmpeg protocol).
            result = extract_keyframes(
                "file:" + os.path.abspath(video_path), write_jpeg, job.settings, name=job.episode_id
            )
        else:
            with video_fs.open(video_path, "rb") as source:
                result = extract_keyframes(source, write_jpeg, job.settings, name=job.episode_id)
    except ProbeError as exc:
        return _lost(job.episode_id, exc.reason, str(exc))
    except (OSError, ValueError, MemoryError) as exc:
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        return _lost(job.episode_id, "undecodable", f"{job.episode_id}: {text}")
    learned = result.learned_shots
    summary = {
        "duration_s": result.duration_s,
        "seconds": round(result.seconds, 3),
        "shots": len(result.shots),
        "keyframes": len(result.keyframes),
        "decode_errors": result.decode_errors,
        "learned_shots": learned,
        "judged": result.judged,
        "rescued": result.rescued,
    }
    return EpisodeResult(
        job.episode_id, [result], given=1, summary=summary, model_id="" if learned.startswith("off") else learned
    )


def extract_episodes(jobs: list[EpisodeJob], processes: int) -> Iterator[EpisodeResult[EpisodeKeyframes]]:
    """Each job's result as episodes finish: in-process for one process, else a spawn-based pool
    (forking a process that holds threads and gRPC channels, as a Dagster step does, is unsafe)."""
    if processes <= 1:
        yield from (process_episode(job) for job in jobs)
        return
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(process_episode, job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


def _lost(episode_id: str, reason: str, detail: str) -> EpisodeResult[EpisodeKeyframes]:
    return EpisodeResult(
        episode_id, given=1, losses=[LossRecord(stage=STAGE, item=episode_id, reason=reason, detail=detail)]
    )

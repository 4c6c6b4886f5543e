"""Keyframes of an episode in one streaming decode: shots, the sharpest frame near each
chosen position, and a quality verdict for each keyframe.

    result = extract_keyframes(source, write_jpeg=..., settings=KeyframeSettings())

Each shot is cut into windows of `seconds_per_keyframe` from its start; every window (and a
tail of at least half a window, or the whole shot when it is shorter) gets one keyframe:
among the candidate frames sampled in the window (a few per second, at display geometry),
the sharpest one weighted by its closeness to the window's centre, avoiding fades and
dissolves. Candidates are dropped as soon as their window is decided, so memory stays flat
however long the episode is.

The quality filter marks a keyframe invalid, with a reason, when it is black or a flat
colour, blurred (against the sharpness of its own shot), low in information, a near-copy of
the previous keyframe (perceptual hash), or inside a transition. Invalid keyframes are
kept (valid = False) so the catalog shows what was filtered and why.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import cv2
import numpy as np

from .probe import ProbeError, normalise_rotation
from .shots import _PLANAR_YUV, LOOKAHEAD, Boundary, ShotBoundaryDetector, _plane, features_from_frame

STAGE_VERSION = "1"


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


@dataclass
class _Candidate:
    """A sampled frame kept cheaply (the decoded frame itself, or a copy scaled to the
    keyframe size for 4K/8K and non-8-bit formats) until its window is decided; only the
    chosen one is converted to an RGB image."""

    frame: int
    time_s: float
    picture: av.VideoFrame | None
    rgb: np.ndarray | None
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
    background_decode: bool = True,
) -> EpisodeKeyframes:
    """Decode `source` once; `write_jpeg(file_name, data)` stores a keyframe and returns its path.
    `background_decode` decodes in a thread of its own, overlapping with the analysis."""
    label = name or str(source)
    started = time.perf_counter()
    # The decoder's frame threads already keep the cores busy; OpenCV's own thread pool on
    # these small images only adds hand-offs between threads (measured: ~7 % more CPU).
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        result = _extract(source, write_jpeg, settings, label, background_decode)
    finally:
        cv2.setNumThreads(opencv_threads)
    result.seconds = time.perf_counter() - started
    return result


def _extract(source, write_jpeg, settings: KeyframeSettings, label: str, background_decode: bool) -> EpisodeKeyframes:
    try:
        container = av.open(source)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ProbeError("unreadable", f"{label}: cannot open as a video ({' '.join(str(exc).split())[:200]})") from None
    with container:
        if not container.streams.video or container.streams.video[0].codec_context is None:
            raise ProbeError("no_video_stream", f"{label}: no decodable video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 25.0
        sar = float(stream.sample_aspect_ratio or 1)
        run = _EpisodeRun(settings, fps, write_jpeg)
        run.size = keyframe_size(stream.codec_context.width, stream.codec_context.height, sar, settings.max_long_side)
        sample_every = max(1, int(round(fps / settings.candidates_per_second)))
        index = -1
        try:
            for frame in decoded_frames(container, stream, background=background_decode):
                index += 1
                time_s = float(frame.pts * stream.time_base) if frame.pts is not None else index / fps
                if index == 0:
                    run.rotation = normalise_rotation(getattr(frame, "rotation", 0))
                run.push(frame, index, time_s, sample=index % sample_every == 0)
        except av.error.FFmpegError:
            run.result.decode_errors += 1  # a damaged tail: keep what decoded
        if index < 0:
            raise ProbeError("no_frames", f"{label}: no decodable frame")
        return run.finish()


_END = object()
# Decoded frames waiting for the analysis: enough to ride out a slow frame, bounded in bytes
# so that 4K/8K video stays in bounded memory.
QUEUE_BYTES = 96 * 2**20


def decoded_frames(container, stream, *, background: bool = True):
    """The stream's frames in order. In the background, FFmpeg decodes (without the GIL) while
    the caller analyses the previous frames; an FFmpeg error is raised where it happened."""
    if not background:
        yield from container.decode(stream)
        return
    width, height = stream.codec_context.width or 1920, stream.codec_context.height or 1080
    frames: queue.Queue = queue.Queue(maxsize=max(2, min(32, QUEUE_BYTES // max(1, width * height * 3 // 2))))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            for frame in container.decode(stream):
                if not put(frame):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=decode, name="skyscript-decode", daemon=True)
    thread.start()
    try:
        while (item := frames.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # the consumer stopped (done, failed, or closed early): the decoder stops before the container closes
        stop.set()
        thread.join()


class _EpisodeRun:
    def __init__(self, settings: KeyframeSettings, fps: float, write_jpeg):
        self.settings = settings
        self.detector = ShotBoundaryDetector(fps=fps)
        self.write_jpeg = write_jpeg
        self.result = EpisodeKeyframes(fps=round(fps, 6))
        self.size = (0, 0)
        self.rotation = 0
        self.times: deque = deque(maxlen=LOOKAHEAD + 2)
        self.candidates: list[_Candidate] = []
        self.shot = _OpenShot(0, 0, 0.0, "start", 0.0, 0.0)
        self.seen_boundaries = 0
        self.previous_hash: np.ndarray | None = None
        self.last_time_s = 0.0
        self.last_frame = -1

    # -- streaming ----------------------------------------------------------------------

    def push(self, frame, index: int, time_s: float, sample: bool) -> None:
        self.detector.push(features_from_frame(frame, index, time_s))
        self.times.append(time_s)
        self.last_time_s, self.last_frame = time_s, index
        if sample:
            self.candidates.append(self._candidate(frame, index, time_s))
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
        self.result.width, self.result.height = self._display_size()
        return self.result

    def _take_new_boundaries(self) -> None:
        for boundary in self.detector.boundaries[self.seen_boundaries:]:
            self._close_shot(boundary.time_s, boundary.frame - 1, next_boundary=boundary)
            self.shot = _OpenShot(self.shot.index + 1, boundary.frame, boundary.time_s, boundary.kind,
                                  boundary.gradual_end_s or boundary.time_s, boundary.time_s)
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
        self.result.shots.append(ShotRecord(shot.index, round(shot.start_s, 6), round(end_s, 6), shot.start_frame,
                                            max(shot.start_frame, end_frame), shot.transition_in))

    def _choose(self, start_s: float, end_s: float, transition_out_s: float | None, force: bool = False) -> None:
        inside = [c for c in self.candidates if start_s <= c.time_s < end_s]
        self.candidates = [c for c in self.candidates if c.time_s >= end_s]
        self.shot.sharpness.extend(c.sharpness for c in inside)
        if not inside:
            return
        centre = (start_s + end_s) / 2
        half = max((end_s - start_s) / 2, 1e-6)

        def in_transition(c: _Candidate) -> bool:
            return c.time_s < self.shot.transition_until_s or (transition_out_s is not None and c.time_s >= transition_out_s)

        clean = [c for c in inside if not in_transition(c)] or inside
        best = max(clean, key=lambda c: c.sharpness * (1.0 - 0.5 * min(1.0, abs(c.time_s - centre) / half)))
        reason = self._quality(best, in_transition(best))
        self._emit(best, reason)

    def _quality(self, candidate: _Candidate, in_transition: bool) -> str | None:
        s = self.settings
        candidate.rgb = self._display_rgb(candidate)
        gray = cv2.cvtColor(candidate.rgb, cv2.COLOR_RGB2GRAY)
        mean, std = cv2.meanStdDev(gray)  # one pass, no float copy of the image
        luma, spread = float(mean[0, 0]), float(std[0, 0])
        frame_hash = _dhash(gray)
        duplicate = self.previous_hash is not None and int(np.count_nonzero(frame_hash != self.previous_hash)) <= s.duplicate_hamming
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
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(candidate.rgb, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, self.settings.jpeg_quality])
        number = len(self.result.keyframes)
        path = self.write_jpeg(f"shot{self.shot.index:04d}-kf{number:04d}.jpg", jpeg.tobytes())
        height, width = candidate.rgb.shape[:2]
        self.result.keyframes.append(KeyframeRecord(
            self.shot.index, number, round(candidate.time_s, 6), candidate.frame, reason is None, reason,
            width, height, round(candidate.sharpness, 3), path))
        self.shot.keyframes += 1

    # -- pixels -------------------------------------------------------------------------

    def _candidate(self, frame, index: int, time_s: float) -> _Candidate:
        width, height = self.size
        if frame.format.name not in _PLANAR_YUV or frame.width > 2 * width:
            # 4K/8K: keep candidates near the output size, not 50 MB each; 10-bit, RGB, NV12:
            # 8-bit planar once, so sharpness reads a luma plane like everywhere else.
            frame = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
        # Else the decoded frame itself is kept: PyAV hands out a new reference-counted
        # frame each time, so holding it costs no copy.
        return _Candidate(index, time_s, frame, None, _sharpness(_plane(frame.planes[0])))

    def _display_rgb(self, candidate: _Candidate) -> np.ndarray:
        """The candidate at display geometry. swscale scales and converts in one pass and
        honours the video's range (limited-range black 16 becomes RGB 0)."""
        width, height = self.size
        rgb = candidate.picture.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
        candidate.picture = None
        if self.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self.rotation // 90))  # display matrix: counter-clockwise
        return rgb

    def _display_size(self) -> tuple[int, int]:
        width, height = self.size
        return (height, width) if self.rotation % 180 == 90 else (width, height)


SHARPNESS_WIDTH = 384


def _sharpness(gray: np.ndarray) -> float:
    """Laplacian variance of the luma on a fixed scale (every step-th pixel, no filtering:
    cheap, and consistent within an episode, which is all a relative blur test needs).
    16-bit Laplacian (exact for 8-bit input) and OpenCV's own statistics: no float copy of
    the image is allocated."""
    step = max(1, gray.shape[1] // SHARPNESS_WIDTH)
    if step > 1:  # nearest-neighbour resize = gray[::step, ::step], without the strided copy
        height, width = gray.shape
        gray = cv2.resize(gray, (-(-width // step), -(-height // step)), interpolation=cv2.INTER_NEAREST)
    _, std = cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_16S))
    return float(std[0, 0]) ** 2


def _dhash(gray: np.ndarray) -> np.ndarray:
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA)
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


@dataclass
class EpisodeOutcome:
    episode_id: str
    result: EpisodeKeyframes | None = None
    loss_reason: str | None = None
    loss_detail: str | None = None


def process_episode(job: EpisodeJob) -> EpisodeOutcome:
    """Extract one episode's keyframes into `job.output_uri`; never raises for a bad video.

    The folder is emptied first, so a re-run leaves no stale JPEG from an earlier attempt;
    each JPEG is written under a temporary name and moved into place."""
    import fsspec

    fs, folder = fsspec.core.url_to_fs(job.output_uri)
    folder = folder.rstrip("/")
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    fs.makedirs(folder, exist_ok=True)
    local = fs.protocol in ("file", ("file", "local"))

    def write_jpeg(file_name: str, data: bytes) -> str:
        path = f"{folder}/{file_name}"
        with fs.open(path + ".tmp", "wb") as f:
            f.write(data)
        fs.mv(path + ".tmp", path)
        return path if local else fs.unstrip_protocol(path)

    try:
        video_fs, video_path = fsspec.core.url_to_fs(job.video_uri)
        with video_fs.open(video_path, "rb") as source:
            result = extract_keyframes(source, write_jpeg, job.settings, name=job.episode_id)
    except ProbeError as exc:
        return EpisodeOutcome(job.episode_id, loss_reason=exc.reason, loss_detail=str(exc))
    except (OSError, ValueError, MemoryError) as exc:
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        return EpisodeOutcome(job.episode_id, loss_reason="undecodable", loss_detail=f"{job.episode_id}: {text}")
    return EpisodeOutcome(job.episode_id, result=result)

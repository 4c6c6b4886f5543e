"""Shot boundaries from one streaming decode: hard cuts, fades and dissolves.

Features per frame are read straight from the decoded YUV planes (a strided sample, block
averaged; no colour conversion or scaling of the full frame), so detection costs little
beyond decoding itself:

    thumb   a 64x36 grey thumbnail          -> pixel change between frames
    hist    Y, U and V histograms          -> content change robust to motion
    luma    mean and spread of brightness    -> black frames of a fade

Decisions are taken `LOOKAHEAD` frames late, from a bounded window of features, so memory
does not grow with the episode:

* a hard cut is a frame whose change from the previous one is large in absolute terms and
  large against the recent motion, and that does not come back: if a frame a few frames
  later looks like the one before the spike, it was a flash or something passing in front
  of the camera (an occlusion), not a cut;
* a fade is a run of near-black frames between two shots;
* a dissolve is a run of moderate changes whose ends differ like a cut and whose middle is
  the blend of its ends (a pan's middle is not);
* a flicker is told from a cutaway over a longer window (`LONG_RETURN_S`, ~1 s): when the
  picture comes back to the one before the change within it, the change was a transient
  (a VFX flicker, an explosion) if the frames in between kept changing violently, and a
  short shot of something else (a cutaway: two real cuts) if they were a steady picture.

With a `judge` (a learned second opinion: TransNetV2's probability of a transition, see
`skyscript_assets.models.shot_boundaries`), the two cover each other's blind spots:

* a change too small for a cut, but an isolated spike in a calm stretch that settles (a
  cut between two framings of the same set, a cut in a dark scene, which the thresholds
  above cannot tell from motion without also firing on it) is a cut when the judge says
  so (`RESCUE_P`): it sees 100 frames of context where the thresholds see two;
* everything else the thresholds decide alone, and the judge is not asked: the network
  fires on flashes and explosions and misses the cuts around very short shots, which the
  return tests and the cut thresholds get right.

The judge sees 100 frames of 48x27 RGB (`small`) with the candidate at `JUDGE_AT` (inside
the published model's trusted middle), so decisions wait `JUDGE_AFTER` frames.

Boundaries are presentation timestamps (VFR-safe); frame numbers count frames in decode
order from 0.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from skyscript_assets.stages.video import pixel_stats

THUMB_W, THUMB_H = 64, 36
LOOKAHEAD = 12  # frames a decision waits for; also the longest flash/occlusion rejected
BASELINE_WINDOW = 24  # recent frame changes that set the local motion level
CUT_MIN = 0.32  # absolute change a cut must reach (0..1 scale)
CUT_OVER_MOTION = 1.3  # ... and its ratio to the recent motion level
RETURN_RATIO = 0.45  # a later frame this close to the pre-spike frame means "transient"
BRIGHTNESS_ONLY = 0.1  # structure change under which a big change is only exposure
SETTLE_RATIO = 1.4  # a cut stands out this much from the changes right after it
BLACK_LUMA = 24.0  # mean luma (0..255) under which a frame counts as black
BLACK_SPREAD = 12.0
GRADUAL_STEP = 0.035  # per-frame change that may be part of a dissolve
GRADUAL_MIN_FRAMES, GRADUAL_MAX_FRAMES = 5, 72
BLEND_TOLERANCE = 0.2  # the middle frame's distance to the ends' blend, relative to the ends' distance
MIN_SHOT_FRAMES = 6  # a boundary closer than this to the previous one is merged into it
DARK_SPREAD = 1.5  # a dark frame flatter than this is the black of a fade: no cut is looked for in it
LONG_RETURN_S = 1.0  # a picture that comes back within this was a flicker or a cutaway
TURBULENT_RATIO, TURBULENT_MIN = 3.0, 0.15  # changes inside a flicker: over this x the motion before, and this
WEAK_MIN = 0.12  # the smallest change a learned judge is asked about
WEAK_OVER_MOTION = 4.0  # ... and its ratio to the recent motion level
ISOLATION = 0.4  # ... while no other change within ISOLATION_FRAMES reaches this share of it
ISOLATION_FRAMES = 3
RESCUE_P = 0.5  # the judge's transition probability that makes such a change a cut
JUDGE_WINDOW, JUDGE_AT = 100, 70  # frames the judge sees, and the candidate's place among them
JUDGE_AFTER = JUDGE_WINDOW - JUDGE_AT


@dataclass(slots=True)
class FrameFeatures:  # mutable: decoder threads make it, the consumer numbers it
    index: int
    time_s: float
    thumb: np.ndarray  # float32 (THUMB_H, THUMB_W), 0..255
    hist: np.ndarray  # float32: Y (64 bins), U (32), V (32) histograms, each summing to 1
    luma: float
    spread: float
    distance: float | None = None  # content distance to the frame before it, when computed with it
    sharpness: float | None = None  # Laplacian variance of the luma, when asked for (keyframe candidates)
    small: np.ndarray | None = None  # uint8 (27, 48, 3) RGB, what a learned judge sees, when asked for

    @property
    def is_black(self) -> bool:
        return self.luma < BLACK_LUMA and self.spread < BLACK_SPREAD


@dataclass(frozen=True)
class Boundary:
    """The first frame of a new shot and how it began; `gradual_*` span a fade or dissolve."""

    frame: int
    time_s: float
    kind: str  # cut, fade, dissolve
    gradual_start_s: float | None = None
    gradual_end_s: float | None = None


def features_from_frame(
    frame,
    index: int,
    time_s: float,
    previous: FrameFeatures | None = None,
    sharpness_step: int = 0,
    small: bool = False,
) -> FrameFeatures:
    """Features of a PyAV VideoFrame, from its planes when it is 8-bit planar YUV; with the
    content distance to `previous` (the frame before it), for `sharpness_step` > 0 the
    Laplacian variance of every `sharpness_step`-th luma pixel, and with `small` the 48x27
    RGB picture a learned judge sees, in the same compiled call."""
    if frame.format.name in _PLANAR_YUV:
        planes = frame.planes
        y, u, v = _plane(planes[0]), _plane(planes[1]), _plane(planes[2])
        full_range = frame.format.name.startswith("yuvj")
    else:  # 10-bit, RGB, NV12, ...: let swscale do it (slower, rare); no full-size luma to measure
        y, u, v = frame.to_ndarray(width=THUMB_W * 2, height=THUMB_H * 2, format="yuv444p")
        sharpness_step, full_range = 0, False
    thumb, hist = np.empty((THUMB_H, THUMB_W), np.float32), np.empty(128, np.float32)
    previous_thumb = _NO_THUMB if previous is None else previous.thumb
    previous_hist = _NO_HIST if previous is None else previous.hist
    # Luma decimated then 2x2-averaged to the thumbnail; marginal histograms (luma finer than
    # chroma), each summing to 1: a cut changes them, motion mostly does not.
    if small:
        picture = np.empty((SMALL_H, SMALL_W, 3), np.uint8)
        luma, spread, distance, sharpness = pixel_stats.frame_statistics_and_small(
            y, u, v, thumb, hist, previous_thumb, previous_hist, sharpness_step, picture, full_range
        )
    else:
        picture = None
        luma, spread, distance, sharpness = pixel_stats.frame_statistics(
            y, u, v, thumb, hist, previous_thumb, previous_hist, sharpness_step
        )
    return FrameFeatures(
        index,
        time_s,
        thumb,
        hist,
        luma,
        spread,
        None if distance < 0 else distance,
        None if sharpness < 0 else sharpness,
        picture,
    )


SMALL_W, SMALL_H = 48, 27  # TransNetV2's input


_NO_THUMB, _NO_HIST = np.empty((0, 0), np.float32), np.empty(0, np.float32)


_PLANAR_YUV = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"})


def _plane(plane) -> np.ndarray:
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


def content_distance(a: FrameFeatures, b: FrameFeatures) -> float:
    """0..1: half colour-histogram change, half pixel change (mean absolute, scaled)."""
    return pixel_stats.content_distance(a.thumb, a.hist, b.thumb, b.hist)


def structure_distance(a: FrameFeatures, b: FrameFeatures) -> float:
    """Pixel change after normalising brightness: near 0 when only the exposure changed
    (a fade step, a light switched on), large when the picture itself changed."""
    return float(np.abs(a.thumb / max(a.luma, 1.0) - b.thumb / max(b.luma, 1.0)).mean())


def _blend_distance(start: FrameFeatures, middle: FrameFeatures, end: FrameFeatures, alpha: float) -> float:
    blend = (1 - alpha) * start.thumb + alpha * end.thumb
    return float(np.abs(middle.thumb - blend).mean()) / 64.0


def _dimming_start(run: list[FrameFeatures]) -> FrameFeatures:
    """The frame where brightness began to fall steadily, at the end of `run`."""
    index = len(run) - 1
    while index > 0 and run[index - 1].luma > run[index].luma:
        index -= 1
    return run[index]


def _gradual_kind(run: list[FrameFeatures]) -> str | None:
    """ "fade" or "dissolve" when `run` moves steadily from one picture to another by mixing
    them (its middle is the blend of its ends), else None (camera motion, an explosion)."""
    start, end = run[0], run[-1]
    if content_distance(start, end) < CUT_MIN:
        return None
    middle_at = len(run) // 2
    alpha = middle_at / (len(run) - 1)
    ends_apart = float(np.abs(start.thumb - end.thumb).mean()) / 64.0
    if _blend_distance(start, run[middle_at], end, alpha) > BLEND_TOLERANCE * ends_apart:
        return None
    quarters = [run[len(run) * q // 4] for q in (1, 2, 3)]
    away = [content_distance(start, f) for f in quarters]
    toward = [content_distance(f, end) for f in quarters]
    if not (away[0] < away[1] < away[2] and toward[0] > toward[1] > toward[2]):
        return None
    return "fade" if start.is_black or end.is_black else "dissolve"


@dataclass
class ShotBoundaryDetector:
    """Feed frames in decode order with `push`; collect `boundaries` (and call `finish`).

    `judge`, when given, takes `JUDGE_WINDOW` small pictures (uint8, 100 x 27 x 48 x 3)
    and returns the probability that the one at `JUDGE_AT` begins a new shot; frames must
    then carry `small`."""

    fps: float = 25.0
    judge: Callable[[np.ndarray], float] | None = None
    boundaries: list[Boundary] = field(default_factory=list)
    judged: int = 0  # candidates the judge was asked about
    rescued: int = 0  # ... and that it made cuts
    _run: list = field(default_factory=list)  # candidate dissolve: features of its frames
    _black_run: list = field(default_factory=list)
    _run_floor: float = GRADUAL_STEP
    _fade_start_s: float | None = None
    _fade_in_until: int = -1
    _opened_black: bool | None = None
    _last_boundary_frame: int = -(10**9)
    _seen: int = 0

    def __post_init__(self) -> None:
        # ~1 s for the long return test (at least the short one's reach, at most 2.5 s of 24 fps)
        self.long_return = max(LOOKAHEAD, min(60, int(round(LONG_RETURN_S * self.fps))))
        self.lookahead = max(self.long_return, JUDGE_AFTER if self.judge else 0)
        before = max(self.long_return + 2 + BASELINE_WINDOW, JUDGE_AT if self.judge else 0)
        self._window: deque[FrameFeatures] = deque(maxlen=self.lookahead + before + 2)
        self._distances: deque[float] = deque(maxlen=self.lookahead + before + 2)

    def push(self, features: FrameFeatures) -> None:
        previous = self._window[-1] if self._window else None
        if self._opened_black is None:
            self._opened_black = features.is_black
        self._window.append(features)
        if previous is None:
            distance = 0.0
        elif features.distance is not None:  # computed beside its features, in a decoder thread
            distance = features.distance
        else:
            distance = content_distance(previous, features)
        self._distances.append(distance)
        self._seen += 1
        if len(self._window) > self.lookahead:
            self._decide(len(self._window) - 1 - self.lookahead)

    def finish(self) -> list[Boundary]:
        for position in range(max(1, len(self._window) - self.lookahead), len(self._window)):
            self._decide(position)
        self._close_black_run(None)
        self._close_run()
        return self.boundaries

    # -- decisions ----------------------------------------------------------------------

    def _decide(self, position: int) -> None:
        if position <= 0:
            return
        frame = self._window[position]
        distance = self._distances[position]
        motion = self._motion(position)
        if frame.is_black:
            if self._judged_cut(position, distance, motion):  # a cut in a dark scene: the dark frames were a shot
                self._run, self._black_run, self._fade_start_s = [], [], None
                self._add(Boundary(frame.index, frame.time_s, "cut"))
                return
            if self._run and not self._black_run:
                self._fade_start_s = _dimming_start(self._run).time_s  # the fade-out leading into the black
            self._run = []
            self._black_run.append(frame)
            return
        if self._black_run:
            self._close_black_run(frame)
        if self._is_cut(position, distance, motion) or self._judged_cut(position, distance, motion):
            self._close_run()
            self._add(Boundary(frame.index, frame.time_s, "cut"))
            return
        if self._run:
            if distance >= self._run_floor and len(self._run) <= GRADUAL_MAX_FRAMES:
                self._run.append(frame)
            else:
                self._close_run()
        elif distance >= max(GRADUAL_STEP, 1.5 * motion):
            # A dissolve stands out from the motion before it; it lasts while the change stays up.
            self._run = [self._window[position - 1], frame]
            self._run_floor = max(GRADUAL_STEP, 1.2 * motion)

    def _motion(self, position: int) -> float:
        past = [self._distances[i] for i in range(max(1, position - BASELINE_WINDOW), position)]
        return statistics.median(past) if past else 0.0  # per frame: far cheaper than np.median on 24 floats

    def _is_cut(self, position: int, distance: float, motion: float) -> bool:
        if distance < CUT_MIN or distance < 0.97 * self._distances[position - 1]:
            return False  # too small, or the second frame of a bigger change
        if distance < CUT_OVER_MOTION * max(motion, 0.03):
            return False  # ordinary for this stretch of fast motion
        if structure_distance(self._window[position - 1], self._window[position]) < BRIGHTNESS_ONLY:
            return False  # a fade step or a change of light, not a new picture
        if self._comes_back(position, distance) or self._returns_to_earlier(position, distance):
            return False  # the start or the end of a flash, or of something passing in front of the lens
        after = [self._distances[i] for i in range(position + 1, min(len(self._distances), position + 5))]
        # After a cut the new shot settles; changes that keep going are camera motion, unless
        # the next change is itself a flash that comes back.
        if (
            after
            and SETTLE_RATIO * float(np.median(after)) > distance
            and not self._comes_back(position + 1, after[0])
        ):
            return False
        return not self._inside_flicker(position, distance)

    def _judged_cut(self, position: int, distance: float, motion: float) -> bool:
        """A change too small for `_is_cut` that the judge calls a cut: one isolated spike in
        a calm stretch (nothing else within ISOLATION_FRAMES reaches ISOLATION of it, so it
        also settles), not a transient; asked only of frames with some structure (a dark
        scene, not the black of a fade)."""
        if self.judge is None or distance < WEAK_MIN or distance < WEAK_OVER_MOTION * max(motion, 0.02):
            return False
        frame, previous = self._window[position], self._window[position - 1]
        if frame.small is None or min(frame.spread, previous.spread) < DARK_SPREAD:
            return False
        near = range(max(1, position - ISOLATION_FRAMES), min(len(self._distances), position + ISOLATION_FRAMES + 1))
        if any(self._distances[i] > ISOLATION * distance for i in near if i != position):
            return False
        if self._comes_back(position, distance) or self._returns_to_earlier(position, distance):
            return False
        if self._inside_flicker(position, distance):
            return False
        self.judged += 1
        if self.judge(self._judge_window(position)) < RESCUE_P:
            return False
        self.rescued += 1
        return True

    def _judge_window(self, position: int) -> np.ndarray:
        """JUDGE_WINDOW small pictures with `position`'s at JUDGE_AT; the first and the last
        frame stand in for frames before the video's start and after its end."""
        last = len(self._window) - 1
        return np.stack(
            [
                self._window[min(last, max(0, i))].small
                for i in range(position - JUDGE_AT, position - JUDGE_AT + JUDGE_WINDOW)
            ]
        )

    def _inside_flicker(self, position: int, distance: float) -> bool:
        """True when the change at `position` starts or ends a flicker: the picture comes back
        within `long_return` frames (after it, to the one before it; or it was seen that
        shortly before) and the frames in between kept changing violently. A steady picture in
        between is a cutaway, two real cuts."""
        before = self._window[position - 1]
        for i in range(position + 1, min(len(self._window), position + 1 + self.long_return)):
            if content_distance(before, self._window[i]) < RETURN_RATIO * distance:
                return self._turbulent(position, i, self._motion(position))
        frame = self._window[position]
        for j in range(position - 2, max(-1, position - 2 - self.long_return), -1):
            if content_distance(self._window[j], frame) < RETURN_RATIO * distance:
                return self._turbulent(j + 1, position, self._motion(j) if j > 0 else 0.0)
        return False

    def _turbulent(self, start: int, end: int, motion: float) -> bool:
        """The frame-to-frame changes strictly inside (start, end) are violent against `motion`."""
        inside = [self._distances[k] for k in range(start + 1, end)]
        return bool(inside) and statistics.median(inside) >= max(TURBULENT_MIN, TURBULENT_RATIO * motion)

    def _returns_to_earlier(self, position: int, distance: float) -> bool:
        """True when the new picture is one seen shortly before the frame preceding it."""
        frame = self._window[position]
        earlier = range(position - 2, max(-1, position - 2 - LOOKAHEAD), -1)
        return any(content_distance(self._window[i], frame) < RETURN_RATIO * distance for i in earlier)

    def _comes_back(self, position: int, distance: float) -> bool:
        """True when a frame soon after `position` looks like the one before it again."""
        before = self._window[position - 1]
        later = range(position + 1, min(len(self._window), position + 1 + LOOKAHEAD))
        return any(content_distance(before, self._window[i]) < RETURN_RATIO * distance for i in later)

    def _close_black_run(self, next_frame: FrameFeatures | None) -> None:
        run, self._black_run = self._black_run, []
        fade_start_s, self._fade_start_s = self._fade_start_s, None
        if not run or next_frame is None:
            return
        if run[0].index <= 1 or self._last_boundary_frame >= run[0].index - 1:
            return  # fade-in at the very start, or black right after a cut: not a new shot
        middle = run[len(run) // 2]  # the darkest stretch is where one shot hands over to the next
        self._add(Boundary(middle.index, middle.time_s, "fade", fade_start_s or run[0].time_s, next_frame.time_s))
        self._fade_in_until = next_frame.index + 1  # a run starting here is the fade-in itself

    def _close_run(self) -> None:
        run, self._run = self._run, []
        if len(run) < GRADUAL_MIN_FRAMES + 1:
            return
        start = run[0]
        opening_fade = self._opened_black and not self.boundaries and start.index < 3 * self.fps
        if start.index <= self._fade_in_until or opening_fade:
            return  # the fade-in out of black (after a fade, or opening the video) belongs to its shot
        # The run may go on past the transition (into a pan or a zoom): take the longest
        # stretch from its start that still looks like a blend of its two ends.
        for length in range(min(len(run), GRADUAL_MAX_FRAMES), GRADUAL_MIN_FRAMES, -1):
            kind = _gradual_kind(run[:length])
            if kind:
                middle = run[(length - 1) // 2 + 1]
                self._add(Boundary(middle.index, middle.time_s, kind, start.time_s, run[length - 1].time_s))
                return

    def _add(self, boundary: Boundary) -> None:
        if boundary.frame - self._last_boundary_frame < MIN_SHOT_FRAMES:
            return
        self.boundaries.append(boundary)
        self._last_boundary_frame = boundary.frame


def boundary_f1(found: list[int], truth: list[int], tolerance: int = 1) -> tuple[float, int, int, int]:
    """(F1, true positives, false positives, misses) of boundary frames, matched one to one
    within `tolerance` frames; 1.0 when both lists are empty."""
    unmatched = sorted(truth)
    tp = 0
    for frame in sorted(found):
        match = next((t for t in unmatched if abs(t - frame) <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            tp += 1
    fp, fn = len(found) - tp, len(truth) - tp
    return (1.0 if not found and not truth else 2 * tp / (2 * tp + fp + fn)), tp, fp, fn

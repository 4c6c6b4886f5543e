"""Camera angle of a keyframe from the straight lines in it.

Vertical edges of the world (walls, doors, poles, people standing) meet in one vanishing
point. Lifted through the camera intrinsics, that point is the world's vertical direction
as the camera sees it, which gives two angles:

* roll: how far that direction leans sideways; a large roll is a Dutch angle;
* pitch: how far the camera looks down (vertical lines converge below the frame, a high
  angle; straight down is overhead) or up (they converge above it, a low angle). Parallel
  verticals mean the camera is level: eye level.

Without enough vertical lines, the roll comes from the near-horizontal lines alone (their
length-weighted median tilt), which can tell a Dutch angle but not the pitch. A frame with
neither gives None: no evidence, no angle. Face positions are not used: where a face sits
depends on the camera's height as much as on its pitch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations

import cv2
import numpy as np

from skyscript_assets.stages.scripts.layout import camera_intrinsics

DUTCH_ROLL_DEG = 8.0  # a horizon tilted more than this is deliberate
HIGH_LOW_PITCH_DEG = 10.0
OVERHEAD_PITCH_DEG = 60.0
VERTICAL_WINDOW_DEG = 30.0  # lines within this of vertical count as vertical, within it of horizontal as horizontal
MIN_VERTICAL_LINES = 4
MIN_HORIZONTAL_LINES = 3
INLIER_DEG = 2.0  # a line whose direction misses the vanishing point (or the median tilt) by more is an outlier
MIN_SUPPORT = 0.6  # share of the lines' length that must agree on the vanishing point (or the tilt)
MAX_CANDIDATE_LINES = 30


@dataclass(frozen=True)
class CameraAngle:
    angle: str | None  # eye_level, high, low, overhead, dutch; None without evidence
    roll_deg: float | None = None  # positive: the world's verticals lean clockwise in the image
    pitch_deg: float | None = None  # positive: the camera looks down
    vertical_lines: int = 0
    horizontal_lines: int = 0


def line_segments(gray: np.ndarray, min_length_share: float = 0.08) -> np.ndarray:
    """Straight segments (N, 4: x0, y0, x1, y1) at least `min_length_share` of the shorter side long."""
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    edges = cv2.Canny(blurred, 50, 150)
    min_length = max(12, int(min(gray.shape) * min_length_share))
    found = cv2.HoughLinesP(
        edges, 1, np.pi / 360, threshold=max(20, min_length // 2), minLineLength=min_length, maxLineGap=3
    )
    return np.zeros((0, 4)) if found is None else found[:, 0, :].astype(float)


def estimate_camera_angle(rgb: np.ndarray, hfov_deg: float | None = None) -> CameraAngle:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    height, width = gray.shape[:2]
    intrinsics = camera_intrinsics(width, height) if hfov_deg is None else camera_intrinsics(width, height, hfov_deg)
    segments = line_segments(gray)
    dx, dy = segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1]
    lengths = np.hypot(dx, dy)
    # angle from the image's vertical, folded into (-90, 90]: 0 vertical, +-90 horizontal
    from_vertical = np.degrees(np.arctan2(dx, dy))
    from_vertical = (from_vertical + 90) % 180 - 90
    vertical = np.abs(from_vertical) <= VERTICAL_WINDOW_DEG
    horizontal = np.abs(from_vertical) >= 90 - VERTICAL_WINDOW_DEG
    roll = pitch = None
    verticals = segments[vertical]
    if len(verticals) >= MIN_VERTICAL_LINES:
        direction = vertical_direction(verticals, lengths[vertical], intrinsics)
        if direction is not None:
            roll = float(np.degrees(np.arctan2(-direction[0], direction[1])))
            pitch = float(np.degrees(np.arctan2(direction[2], np.hypot(direction[0], direction[1]))))
    if roll is None:
        tilts = -((from_vertical[horizontal] + 180) % 180 - 90)  # 0 for a level line, positive clockwise
        roll = horizon_roll(tilts, lengths[horizontal])
    return CameraAngle(
        classify_angle(roll, pitch),
        None if roll is None else round(roll, 2),
        None if pitch is None else round(pitch, 2),
        int(vertical.sum()),
        int(horizontal.sum()),
    )


def vertical_direction(segments: np.ndarray, weights: np.ndarray, intrinsics: np.ndarray) -> np.ndarray | None:
    """The world's downward vertical in camera coordinates (x right, y down, z forward), unit
    length, from the vanishing point of near-vertical segments: the candidate (crossing of two
    of the longest segments) that most segment length points at, refined by weighted least
    squares on the segments that point at it. None when fewer than MIN_VERTICAL_LINES or less
    than MIN_SUPPORT of the length agree (a tripod's legs or a cup's rim are not the world's
    verticals)."""
    k_inv = np.linalg.inv(intrinsics)
    # lines through the normalised points, so the vanishing point comes out as a direction
    starts = np.column_stack([segments[:, :2], np.ones(len(segments))]) @ k_inv.T
    ends = np.column_stack([segments[:, 2:], np.ones(len(segments))]) @ k_inv.T
    lines = np.cross(starts, ends)
    lines /= np.linalg.norm(lines[:, :2], axis=1, keepdims=True)
    longest = np.argsort(-weights)[:MAX_CANDIDATE_LINES]
    best, best_support = None, 0.0
    for a, b in combinations(longest, 2):
        candidate = np.cross(lines[a], lines[b])
        if not np.any(candidate):
            continue
        support = weights[_misses_deg(starts, ends, candidate) <= INLIER_DEG].sum()
        if support > best_support:
            best, best_support = candidate, support
    if best is None:
        return None
    direction = best
    for _ in range(2):
        keep = _misses_deg(starts, ends, direction) <= INLIER_DEG
        if keep.sum() < MIN_VERTICAL_LINES or weights[keep].sum() < MIN_SUPPORT * weights.sum():
            return None
        scatter = (lines[keep] * weights[keep, None]).T @ lines[keep]
        direction = np.linalg.eigh(scatter)[1][:, 0]
    # the vanishing point is the world's down direction or its up direction: down is the one
    # below the camera's horizontal plane (y > 0); straight overhead counts as looking down
    flip = direction[1] < 0 if abs(direction[1]) > 1e-6 else direction[2] < 0
    direction = -direction if flip else direction
    return direction / np.linalg.norm(direction)


def horizon_roll(tilts_deg: np.ndarray, weights: np.ndarray) -> float | None:
    """Roll from near-horizontal segments (tilt 0 = level, positive clockwise): their weighted
    median, when at least MIN_SUPPORT of their length lies within INLIER_DEG of it."""
    if len(tilts_deg) < MIN_HORIZONTAL_LINES:
        return None
    median = _weighted_median(tilts_deg, weights)
    agree = np.abs(tilts_deg - median) <= INLIER_DEG
    return (
        median if agree.sum() >= MIN_HORIZONTAL_LINES and weights[agree].sum() >= MIN_SUPPORT * weights.sum() else None
    )


def classify_angle(roll_deg: float | None, pitch_deg: float | None) -> str | None:
    if pitch_deg is not None and pitch_deg >= OVERHEAD_PITCH_DEG:
        return "overhead"
    if roll_deg is not None and abs(roll_deg) >= DUTCH_ROLL_DEG:
        return "dutch"
    if pitch_deg is None:
        return None  # a level horizon alone does not tell how far the camera looks up or down
    if pitch_deg >= HIGH_LOW_PITCH_DEG:
        return "high"
    if pitch_deg <= -HIGH_LOW_PITCH_DEG:
        return "low"
    return "eye_level"


def shot_camera_angle(angles: list[str | None]) -> str | None:
    """The shot's angle: the most frequent of its keyframes' angles (first seen on ties)."""
    counts = Counter(a for a in angles if a)
    return max(counts, key=counts.get) if counts else None


def _misses_deg(starts: np.ndarray, ends: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Angle between each segment and the line from its midpoint towards the vanishing point
    (all in normalised image coordinates)."""
    mid = (starts + ends) / 2
    along = ends[:, :2] - starts[:, :2]
    if abs(direction[2]) > 1e-9:
        towards = direction[:2] / direction[2] - mid[:, :2]
    else:
        towards = np.broadcast_to(direction[:2], mid[:, :2].shape)
    cos = np.abs(np.sum(along * towards, axis=1)) / (
        np.linalg.norm(along, axis=1) * np.linalg.norm(towards, axis=1) + 1e-12
    )
    return np.degrees(np.arccos(np.clip(cos, 0, 1)))


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])

"""Camera movement of a shot from the motion between its frames.

Global motion between consecutive (downscaled, grayscale) frames is estimated from
tracked corners (Lucas-Kanade) and a similarity transform: translation, scale, rotation.
Per-second rates, normalised by the frame width, then decide the label:

    zoom      the scale changes steadily (in or out)
    pan/tilt  a steady horizontal / vertical translation
    handheld  translation that jitters back and forth without a steady direction
    static    none of the above
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CAMERA_MOVEMENTS = ("static", "pan", "tilt", "zoom", "handheld")
ANALYSIS_WIDTH = 320
# Thresholds per second of video, as fractions of the frame width (translation) or of scale.
ZOOM_RATE = 0.04  # 4 % scale change per second
PAN_RATE = 0.03  # 3 % of the width per second
JITTER_RATE = 0.02  # frame-to-frame translation spread that reads as a hand-held camera


@dataclass(frozen=True)
class CameraMotion:
    movement: str
    pan_rate: float  # signed, fraction of width per second (+ = content moves left, camera right)
    tilt_rate: float
    zoom_rate: float  # signed, relative scale change per second (+ = zoom in)
    jitter: float
    pairs: int  # frame pairs that gave an estimate


def estimate_camera_motion(frames: list[np.ndarray], fps: float) -> CameraMotion:
    """`frames`: consecutive frames of one shot (gray or RGB), sampled at `fps`."""
    grays = [_prepare(f) for f in frames]
    moves = []
    for previous, current in zip(grays, grays[1:]):
        move = _similarity_between(previous, current)
        if move is not None:
            moves.append(move)
    if not moves:
        return CameraMotion("static", 0.0, 0.0, 0.0, 0.0, 0)
    tx, ty, scale = (np.array(v) for v in zip(*moves))
    width = grays[0].shape[1]
    # Camera motion is the opposite of content motion.
    pan = float(-np.median(tx) / width * fps)
    tilt = float(-np.median(ty) / width * fps)
    zoom = float(np.median(np.log(scale)) * fps)
    jitter = float(np.hypot(np.std(tx), np.std(ty)) / width * fps)
    return CameraMotion(
        _label(pan, tilt, zoom, jitter), round(pan, 4), round(tilt, 4), round(zoom, 4), round(jitter, 4), len(moves)
    )


def _label(pan: float, tilt: float, zoom: float, jitter: float) -> str:
    steady = max(abs(pan), abs(tilt))
    # A zoom also drifts the content a little; it wins unless the drift clearly dominates.
    if abs(zoom) >= ZOOM_RATE and abs(zoom) >= 0.5 * steady:
        return "zoom"
    if jitter >= JITTER_RATE and jitter > steady:
        return "handheld"
    if steady >= PAN_RATE:
        return "pan" if abs(pan) >= abs(tilt) else "tilt"
    return "static"


def _prepare(frame: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    if gray.shape[1] > ANALYSIS_WIDTH:
        height = int(round(gray.shape[0] * ANALYSIS_WIDTH / gray.shape[1]))
        gray = cv2.resize(gray, (ANALYSIS_WIDTH, height), interpolation=cv2.INTER_AREA)
    return gray


def _similarity_between(previous: np.ndarray, current: np.ndarray) -> tuple[float, float, float] | None:
    corners = cv2.goodFeaturesToTrack(previous, maxCorners=300, qualityLevel=0.01, minDistance=6)
    if corners is None or len(corners) < 8:
        return None
    tracked, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, corners, None, winSize=(21, 21), maxLevel=3)
    good = status.reshape(-1) == 1
    if good.sum() < 8:
        return None
    matrix, _ = cv2.estimateAffinePartial2D(corners[good], tracked[good], method=cv2.RANSAC, ransacReprojThreshold=2.0)
    if matrix is None:
        return None
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    # Translation of the frame centre, so a zoom about the centre reads as pure scale.
    h, w = previous.shape
    centre = np.array([w / 2, h / 2, 1.0])
    moved = matrix @ centre
    return float(moved[0] - w / 2), float(moved[1] - h / 2), scale

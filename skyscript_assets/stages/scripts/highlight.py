"""The continuous highlight score of each shot along an episode.

The paper scores highlights from the characters' continuous emotion (VAD) over the
episode rather than from single-frame labels. Per shot, emotional intensity is mostly
arousal, then how far valence is from neutral, then dominance. Where no character has a
VAD, the shot's audio loudness and the cut rhythm (short shots read as intense) stand in.
The raw series is smoothed (a highlight builds over neighbouring shots) and normalised
to 0..1 per episode, so scores are regression targets comparable across episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AROUSAL_WEIGHT, VALENCE_WEIGHT, DOMINANCE_WEIGHT = 0.6, 0.3, 0.1
SMOOTHING_SIGMA_SHOTS = 1.0


@dataclass(frozen=True)
class ShotSignals:
    duration_s: float
    vad: list[tuple[float, float, float]]  # one (valence, arousal, dominance) per character, 1..9
    loudness_db: float | None = None  # e.g. RMS in dBFS of the shot's audio


def emotional_intensity(vad: list[tuple[float, float, float]]) -> float | None:
    if not vad:
        return None
    values = []
    for valence, arousal, dominance in vad:
        values.append(
            AROUSAL_WEIGHT * (arousal - 1) / 8
            + VALENCE_WEIGHT * abs(valence - 5) / 4
            + DOMINANCE_WEIGHT * (dominance - 1) / 8
        )
    return float(max(values))  # the most intense character carries the shot


def highlight_scores(shots: list[ShotSignals]) -> list[float]:
    if not shots:
        return []
    intensity = np.array([np.nan if (v := emotional_intensity(s.vad)) is None else v for s in shots], float)
    fallback = _fallback_intensity(shots)
    missing = np.isnan(intensity)
    raw = np.where(missing, fallback, intensity)
    smoothed = _gaussian_smooth(raw, SMOOTHING_SIGMA_SHOTS)
    low, high = float(smoothed.min()), float(smoothed.max())
    if high - low < 1e-9:
        return [0.5] * len(shots)  # a flat episode has no highlight; say so with a flat middle
    return [round(float(v), 4) for v in (smoothed - low) / (high - low)]


def _fallback_intensity(shots: list[ShotSignals]) -> np.ndarray:
    """Loudness and cut rhythm, each scaled to 0..1 within the episode, averaged."""
    pace = np.array([1.0 / max(s.duration_s, 0.1) for s in shots])
    parts = [_unit(pace)]
    loud = np.array([np.nan if s.loudness_db is None else s.loudness_db for s in shots], float)
    if not np.isnan(loud).all():
        parts.append(_unit(np.where(np.isnan(loud), np.nanmedian(loud), loud)))
    return np.mean(parts, axis=0)


def _unit(values: np.ndarray) -> np.ndarray:
    span = values.max() - values.min()
    return np.full_like(values, 0.5) if span < 1e-9 else (values - values.min()) / span


def _gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    if len(values) < 3 or sigma <= 0:
        return values
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values, radius, mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def plot_highlight_curve(scores: list[float], width: int = 640, height: int = 200) -> bytes:
    """A PNG of the curve (cv2 only, no plotting library), for the asset's metadata."""
    import cv2

    image = np.full((height, width, 3), 255, np.uint8)
    margin = 20
    cv2.rectangle(image, (margin, margin), (width - margin, height - margin), (220, 220, 220), 1)
    if len(scores) >= 2:
        xs = np.linspace(margin, width - margin, len(scores))
        ys = height - margin - np.array(scores) * (height - 2 * margin)
        points = np.stack([xs, ys], axis=1).astype(np.int32)
        cv2.polylines(image, [points], False, (40, 90, 200), 2, cv2.LINE_AA)
    ok, png = cv2.imencode(".png", image)
    return png.tobytes()

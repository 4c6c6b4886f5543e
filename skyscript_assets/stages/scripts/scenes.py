"""Scenes: consecutive shots grouped by continuity of place and time, with their headings.

Two neighbouring shots stay in one scene when they look alike (colour histograms of their
keyframes), or when the MLLM named the same place, or when they share characters and are
close in time. The heading is `INT./EXT. LOCATION - DAY/NIGHT` from the scene's place name,
its description's words and its brightness.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np

SAME_LOOK_CORRELATION = 0.6
MAX_GAP_S = 5.0
INTERIOR_WORDS = {
    "indoors",
    "indoor",
    "inside",
    "room",
    "restaurant",
    "office",
    "kitchen",
    "bedroom",
    "hall",
    "car",
    "cafe",
    "café",
    "shop",
    "bar",
    "hospital",
    "apartment",
    "house",
    "corridor",
    "living",
    "classroom",
}
EXTERIOR_WORDS = {
    "outdoors",
    "outdoor",
    "outside",
    "street",
    "park",
    "garden",
    "road",
    "beach",
    "sky",
    "field",
    "forest",
    "rooftop",
    "mountain",
    "river",
    "city",
    "courtyard",
    "sea",
    "space",
}
NIGHT_WORDS = {"night", "dark", "evening", "moonlight", "midnight", "neon"}
DAY_WORDS = {"day", "sunlight", "sunny", "morning", "afternoon", "daylight", "noon"}


@dataclass(frozen=True)
class ShotForScene:
    start_s: float
    end_s: float
    keyframe_rgb: np.ndarray | None
    place: str | None = None  # the MLLM's scene name
    description: str | None = None
    characters: frozenset[str] = frozenset()


@dataclass
class SceneGroup:
    shot_indices: list[int] = field(default_factory=list)
    interior: bool | None = None
    location: str = "UNKNOWN"
    time_of_day: str | None = None


def colour_signature(rgb: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(cv2.resize(rgb, (64, 36), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).astype(np.float32)
    return cv2.normalize(hist, hist).flatten()


def same_scene(a: ShotForScene, b: ShotForScene) -> bool:
    if b.start_s - a.end_s > MAX_GAP_S:
        return False
    if a.place and b.place and _norm(a.place) == _norm(b.place):
        return True
    if a.keyframe_rgb is not None and b.keyframe_rgb is not None:
        correlation = cv2.compareHist(
            colour_signature(a.keyframe_rgb), colour_signature(b.keyframe_rgb), cv2.HISTCMP_CORREL
        )
        if correlation >= SAME_LOOK_CORRELATION:
            return True
    return bool(a.characters & b.characters) and not (a.place and b.place)


def group_scenes(shots: list[ShotForScene]) -> list[SceneGroup]:
    groups: list[SceneGroup] = []
    for index, shot in enumerate(shots):
        if groups and same_scene(shots[groups[-1].shot_indices[-1]], shot):
            groups[-1].shot_indices.append(index)
        else:
            groups.append(SceneGroup([index]))
    for group in groups:
        _describe(group, [shots[i] for i in group.shot_indices])
    return groups


def _describe(group: SceneGroup, shots: list[ShotForScene]) -> None:
    places = Counter(_norm(s.place) for s in shots if s.place)
    group.location = places.most_common(1)[0][0].upper() if places else "UNKNOWN"
    words = set()
    for s in shots:
        words |= set(re.findall(r"[\wé]+", f"{s.place or ''} {s.description or ''}".lower()))
    interior, exterior = len(words & INTERIOR_WORDS), len(words & EXTERIOR_WORDS)
    group.interior = True if interior > exterior else False if exterior > interior else None
    if words & NIGHT_WORDS:
        group.time_of_day = "NIGHT"
    elif words & DAY_WORDS:
        group.time_of_day = "DAY"
    else:
        brightness = [float(np.mean(s.keyframe_rgb)) for s in shots if s.keyframe_rgb is not None]
        if brightness:
            group.time_of_day = "NIGHT" if np.median(brightness) < 60 else "DAY"


def _norm(place: str | None) -> str:
    return " ".join((place or "").lower().split())

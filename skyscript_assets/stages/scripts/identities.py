"""Character identities across a drama: face observations clustered into stable ids, named.

Face embeddings come from DeepFace where it ran; otherwise `face_descriptor` gives a
shipped-model fallback (HOG of the aligned grey face plus a coarse colour histogram),
weaker but deterministic and offline. Observations are clustered greedily by cosine
similarity to each cluster's mean (order of appearance, so ids are stable when episodes are
added at the end). Names come from name captions and self-introductions in the dialogue;
otherwise "Character n".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np

# HOG vectors are non-negative, so unrelated faces already score ~0.8: the bar sits higher.
SAME_PERSON_SIMILARITY = {"deepface": 0.68, "hog": 0.90}
INTRODUCTION = re.compile(r"\b(?i:I'?m|I am|my name is|call me|this is)\s+([A-Z][a-z]+(?:\s[A-Z][a-z]+)?)\b")
NOT_NAMES = {
    "Sorry",
    "Fine",
    "Here",
    "Home",
    "Back",
    "Not",
    "Just",
    "So",
    "Okay",
    "Ok",
    "Going",
    "The",
    "Glad",
    "Sure",
}


@dataclass(frozen=True)
class FaceObservation:
    observation_id: str  # keyframe id + face index
    embedding: np.ndarray
    time_order: tuple[int, float]  # (episode position, seconds) for stable ordering
    lines: tuple[str, ...] = ()  # dialogue attributed to this face
    caption: str | None = None  # a name card next to the face, if OCR found one


@dataclass
class Character:
    character_id: str
    name: str
    observation_ids: list[str] = field(default_factory=list)
    named_from: str = "default"  # caption, dialogue or default


def face_descriptor(face_rgb: np.ndarray) -> np.ndarray:
    """Fallback embedding of a face crop: HOG of a 64x64 grey face + hue histogram, unit norm."""
    face = cv2.resize(face_rgb, (64, 64), interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY))
    hog = cv2.HOGDescriptor((64, 64), (16, 16), (8, 8), (8, 8), 9).compute(grey).reshape(-1)
    hsv = cv2.cvtColor(face, cv2.COLOR_RGB2HSV)
    hue = cv2.calcHist([hsv], [0], None, [16], [0, 180]).reshape(-1)
    vector = np.concatenate([hog / (np.linalg.norm(hog) + 1e-9), 0.5 * hue / (np.linalg.norm(hue) + 1e-9)])
    return (vector / (np.linalg.norm(vector) + 1e-9)).astype(np.float32)


def cluster_identities(observations: list[FaceObservation], embedding_kind: str = "deepface") -> list[Character]:
    threshold = SAME_PERSON_SIMILARITY[embedding_kind]
    centroids: list[np.ndarray] = []
    members: list[list[FaceObservation]] = []
    for observation in sorted(observations, key=lambda o: o.time_order):
        vector = observation.embedding / (np.linalg.norm(observation.embedding) + 1e-9)
        similarities = [float(vector @ c / (np.linalg.norm(c) + 1e-9)) for c in centroids]
        best = int(np.argmax(similarities)) if similarities else -1
        if best >= 0 and similarities[best] >= threshold:
            members[best].append(observation)
            centroids[best] = centroids[best] + (vector - centroids[best]) / len(members[best])
        else:
            centroids.append(vector.copy())
            members.append([observation])
    characters = []
    for number, group in enumerate(members, start=1):
        name, source = name_for(group)
        characters.append(
            Character(
                f"char-{number}",
                name or f"Character {number}",
                [o.observation_id for o in group],
                source if name else "default",
            )
        )
    return characters


def name_for(observations: list[FaceObservation]) -> tuple[str | None, str]:
    captions = Counter(o.caption.strip() for o in observations if o.caption and o.caption.strip())
    if captions:
        return captions.most_common(1)[0][0], "caption"
    introduced = Counter(name for o in observations for line in o.lines for name in introductions(line))
    if introduced:
        return introduced.most_common(1)[0][0], "dialogue"
    return None, "default"


def introductions(line: str) -> list[str]:
    """Names a speaker gives for themselves ("I'm Emma", "My name is Li Wei")."""
    names = []
    for match in INTRODUCTION.finditer(line):
        name = match.group(1)
        if name.split()[0] not in NOT_NAMES:
            names.append(name)
    return names


NAME_WORD = re.compile(r"^[A-Z][a-z'\u2019-]+$")
CJK_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")


def looks_like_name(text: str) -> bool:
    """A name card's text: one to three capitalised words ("Emma", "Li Wei") or two to four
    CJK characters; not a sentence, not a common word."""
    text = text.strip()
    words = text.split()
    if CJK_NAME.match(text):
        return True
    return 1 <= len(words) <= 3 and all(NAME_WORD.match(w) for w in words) and words[0] not in NOT_NAMES


def name_caption(
    texts: list[tuple[str, tuple[float, float, float, float]]],
    face_box: tuple[float, float, float, float],
    image_height: int,
    subtitle_band: float = 0.25,
) -> str | None:
    """The name card next to a face: text that looks like a name, outside the subtitle band,
    within a few face sizes of the face; the nearest one wins. None when there is none."""
    fx0, fy0, fx1, fy1 = face_box
    size = max(fx1 - fx0, fy1 - fy0, 1.0)
    centre = ((fx0 + fx1) / 2, (fy0 + fy1) / 2)
    best, best_distance = None, float("inf")
    for text, (x0, y0, x1, y1) in texts:
        if y0 >= image_height * (1 - subtitle_band) or not looks_like_name(text):
            continue
        distance = float(np.hypot((x0 + x1) / 2 - centre[0], (y0 + y1) / 2 - centre[1]))
        if distance <= 3 * size and distance < best_distance:
            best, best_distance = text.strip(), distance
    return best

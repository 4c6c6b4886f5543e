"""Character refinement: the MLLM's people checked against faces the detector finds.

For each frame: faces are detected and analysed by DeepFace; faces and MLLM people are
matched (count, left-to-right position, gender, age). Where a matched pair disagrees on
gender, age or emotion, DeepFace is re-run under test-time augmentation (flip, scale,
brightness) and the augmented answers vote; DeepFace's voted answer wins only where it
still disagrees with the MLLM, as in the paper, and every disagreement is recorded
(`disputes`: the MLLM's value, DeepFace's vote, which was adopted). Where there is no
conflict the MLLM's age, gender and emotion are kept; DeepFace fills only what the MLLM
left empty. `sources` says where each adopted value came from. Each character also gets a
depth (median of the depth map inside its face box) and a posture (pose keypoints inside
an estimated body box). Steps whose weights are absent are listed in `not_run`, never
guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from skyscript_assets.models.base import WeightsMissing, bad_image_loss, is_rgb_image
from skyscript_assets.models.faces import FaceAttributes
from skyscript_assets.models.pose import posture_from_keypoints
from skyscript_assets.schema import FlagRecord, LossRecord

STAGE = "character_refinements"
Box = tuple[int, int, int, int]

# Age words an MLLM writes, as year ranges (inclusive).
AGE_WORDS = {
    "baby": (0, 3),
    "infant": (0, 3),
    "toddler": (1, 4),
    "child": (3, 12),
    "kid": (3, 12),
    "boy": (3, 17),
    "girl": (3, 17),
    "teen": (13, 19),
    "teenager": (13, 19),
    "adolescent": (12, 18),
    "young adult": (18, 35),
    "young": (16, 35),
    "adult": (18, 65),
    "middle-aged": (40, 65),
    "middle aged": (40, 65),
    "elderly": (60, 100),
    "old": (60, 100),
    "senior": (60, 100),
}
GENDER_WORDS = {
    "male": "man",
    "man": "man",
    "boy": "man",
    "m": "man",
    "female": "woman",
    "woman": "woman",
    "girl": "woman",
    "f": "woman",
    "lady": "woman",
    "gentleman": "man",
}
# Emotion words an MLLM writes, as the DeepFace classes (angry, disgust, fear, happy, sad,
# surprise, neutral) they are compatible with. A text naming none of them cannot conflict.
EMOTION_WORDS = {
    "happy": {"happy"},
    "happiness": {"happy"},
    "joy": {"happy"},
    "joyful": {"happy"},
    "cheerful": {"happy"},
    "smiling": {"happy"},
    "delighted": {"happy"},
    "pleased": {"happy"},
    "glad": {"happy"},
    "amused": {"happy"},
    "excited": {"happy", "surprise"},
    "content": {"happy", "neutral"},
    "relaxed": {"happy", "neutral"},
    "romantic": {"happy", "neutral"},
    "loving": {"happy", "neutral"},
    "friendly": {"happy", "neutral"},
    "sad": {"sad"},
    "sadness": {"sad"},
    "unhappy": {"sad"},
    "sorrowful": {"sad"},
    "regretful": {"sad", "neutral"},
    "melancholic": {"sad", "neutral"},
    "melancholy": {"sad", "neutral"},
    "depressed": {"sad"},
    "crying": {"sad"},
    "upset": {"sad", "angry"},
    "disappointed": {"sad", "neutral"},
    "heartbroken": {"sad"},
    "hurt": {"sad"},
    "lonely": {"sad", "neutral"},
    "grief": {"sad"},
    "tearful": {"sad"},
    "angry": {"angry"},
    "anger": {"angry"},
    "furious": {"angry"},
    "annoyed": {"angry", "neutral"},
    "irritated": {"angry", "neutral"},
    "mad": {"angry"},
    "frustrated": {"angry", "sad"},
    "hostile": {"angry"},
    "rage": {"angry"},
    "stern": {"angry", "neutral"},
    "afraid": {"fear"},
    "scared": {"fear"},
    "fear": {"fear"},
    "fearful": {"fear"},
    "frightened": {"fear"},
    "terrified": {"fear"},
    "anxious": {"fear", "sad"},
    "nervous": {"fear", "neutral"},
    "worried": {"fear", "sad", "neutral"},
    "concerned": {"fear", "sad", "neutral"},
    "panicked": {"fear"},
    "surprised": {"surprise"},
    "surprise": {"surprise"},
    "shocked": {"surprise", "fear"},
    "astonished": {"surprise"},
    "amazed": {"surprise", "happy"},
    "startled": {"surprise", "fear"},
    "disgusted": {"disgust"},
    "disgust": {"disgust"},
    "contempt": {"disgust", "angry"},
    "repulsed": {"disgust"},
    "neutral": {"neutral"},
    "calm": {"neutral"},
    "serious": {"neutral", "angry"},
    "thoughtful": {"neutral"},
    "contemplative": {"neutral"},
    "pensive": {"neutral", "sad"},
    "reflective": {"neutral", "sad"},
    "focused": {"neutral"},
    "composed": {"neutral"},
    "indifferent": {"neutral"},
    "blank": {"neutral"},
    "expressionless": {"neutral"},
    "curious": {"neutral", "surprise"},
    "confused": {"neutral", "surprise"},
}
ATTRIBUTES = ("age", "gender", "emotion")  # what the MLLM and DeepFace both say about a person


@dataclass
class RefinementModels:
    """The models a refinement uses, loaded once; a missing one is None with its reason."""

    faces: object  # HaarFaceDetector (always available: its cascades ship with OpenCV)
    attributes: object | None = None  # FaceAttributeModel
    depth: object | None = None  # DepthEstimator
    pose: object | None = None  # PoseEstimator
    not_run: dict[str, str] = field(default_factory=dict)  # step -> "not run: no weights at PATH"

    @classmethod
    def load(cls, *, deepface_home=None, depth_model=None, pose_model=None, device: str = "cpu") -> RefinementModels:
        from skyscript_assets.models.depth import DepthEstimator
        from skyscript_assets.models.faces import FaceAttributeModel, HaarFaceDetector
        from skyscript_assets.models.pose import PoseEstimator

        models = cls(HaarFaceDetector.load())
        steps = [
            ("attributes", lambda: FaceAttributeModel.load(deepface_home)),
            ("depth", (lambda: DepthEstimator.load(depth_model, device)) if depth_model else None),
            ("pose", (lambda: PoseEstimator.load(pose_model, device)) if pose_model else None),
        ]
        for step, loader in steps:
            if loader is None:
                models.not_run[step] = "not run: no model configured"
                continue
            try:
                setattr(models, step, loader())
            except WeightsMissing as err:
                models.not_run[step] = str(err)
        if models.attributes is not None:
            models.not_run.update({f"attributes.{k}": v for k, v in models.attributes.not_run.items()})
        return models


@dataclass
class CharacterRefinement:
    person_index: int  # position in the MLLM's people list
    face_box: Box | None = None
    face: FaceAttributes | None = None  # DeepFace's answer (after the vote when there was a conflict)
    conflicts: list[str] = field(default_factory=list)  # age, gender, emotion: still disagreeing after the vote
    tta_runs: int = 0  # augmented analyses that voted (0: no conflict, or no attribute model)
    age: str | None = None  # the adopted values: DeepFace's where it still disagreed, else the MLLM's
    gender: str | None = None
    emotion: str | None = None
    sources: dict[str, str] = field(default_factory=dict)  # age, gender, emotion -> "mllm" or "deepface"
    # every disagreement: {"field", "mllm", "deepface" (the vote), "adopted" ("deepface" or "mllm"), "tta_runs"}
    disputes: list[dict] = field(default_factory=list)
    depth: float | None = None  # median relative inverse depth in the face box (larger = nearer)
    posture: str | None = None


@dataclass
class FrameRefinement:
    item: str
    characters: list[CharacterRefinement]
    unmatched_faces: list[Box]
    face_count: int
    person_count: int
    not_run: dict[str, str]

    @property
    def conflict_count(self) -> int:
        return sum(1 for c in self.characters if c.conflicts)


def refine_frames(
    models: RefinementModels, frames: list[tuple[str, np.ndarray, list[dict]]]
) -> tuple[list[FrameRefinement], list[LossRecord], list[FlagRecord]]:
    """Refine the people of each (item id, RGB image, MLLM people as dicts) frame.
    A frame whose image is not an RGB uint8 array is skipped and recorded as a loss."""
    losses = [bad_image_loss(STAGE, item, image) for item, image, _ in frames if not is_rgb_image(image)]
    frames = [frame for frame in frames if is_rgb_image(frame[1])]
    images = [image for _, image, _ in frames]
    faces_per_frame = [[f.box for f in faces] for faces in models.faces.detect(images)]
    crops = [_crop(image, box) for image, boxes in zip(images, faces_per_frame) for box in boxes]
    attributes = iter(models.attributes.analyze(crops) if models.attributes and crops else [None] * len(crops))
    depth_maps = models.depth.estimate(images) if models.depth else [None] * len(images)
    results, flags = [], []
    for (item, image, people), boxes, depth_map in zip(frames, faces_per_frame, depth_maps):
        faces = [next(attributes) for _ in boxes]
        pairs = match_faces_to_people(boxes, faces, people)
        characters = []
        for person_index, person in enumerate(people):
            character = CharacterRefinement(person_index)
            face_index = pairs.get(person_index)
            if face_index is not None:
                character.face_box, character.face = boxes[face_index], faces[face_index]
                _settle_conflicts(models, image, person, character)
                if depth_map is not None:
                    character.depth = median_depth(depth_map, character.face_box)
            adopt_attributes(person, character)
            characters.append(character)
        _add_postures(models, image, characters)
        matched = set(pairs.values())
        frame = FrameRefinement(
            item,
            characters,
            [b for i, b in enumerate(boxes) if i not in matched],
            len(boxes),
            len(people),
            dict(models.not_run),
        )
        results.append(frame)
        # disagreements are kept (DeepFace adopted) and flagged: quality signals, not losses
        if len(boxes) != len(people):
            flags.append(
                FlagRecord(
                    stage=STAGE,
                    item=item,
                    reason="face_count_conflict",
                    detail=f"MLLM lists {len(people)} people, face detector finds {len(boxes)} faces",
                )
            )
        flags += [
            FlagRecord(
                stage=STAGE,
                item=f"{item}/person{c.person_index}",
                reason="face_conflict",
                detail=f"MLLM and DeepFace disagree on {', '.join(c.conflicts)} after test-time "
                "augmentation; DeepFace adopted",
            )
            for c in characters
            if c.conflicts
        ]
    return results, losses, flags


def conflict_rate(frames: list[FrameRefinement]) -> float | None:
    """Share of face-matched characters on which the MLLM and DeepFace disagreed."""
    matched = [c for f in frames for c in f.characters if c.face_box is not None]
    return sum(1 for c in matched if c.conflicts) / len(matched) if matched else None


def match_faces_to_people(boxes: list[Box], faces: list[FaceAttributes | None], people: list[dict]) -> dict[int, int]:
    """person index -> face index, by the cheapest assignment of:
    gender disagreement (1.0) + age outside the MLLM's range (0.5) + distance between the
    person's place in the MLLM's list and the face's left-to-right rank (0.25 per step:
    MLLMs list people in reading order). Extra faces or people stay unmatched."""
    if not boxes or not people:
        return {}
    order = np.argsort([b[0] + b[2] for b in boxes])
    rank = {int(face): r for r, face in enumerate(order)}
    cost = np.zeros((len(people), len(boxes)))
    for p, person in enumerate(people):
        for f, face in enumerate(faces):
            cost[p, f] = 0.25 * abs(rank[f] - p)
            if face is not None:
                cost[p, f] += 1.0 * ("gender" in attribute_conflicts(person, face))
                cost[p, f] += 0.5 * ("age" in attribute_conflicts(person, face))
    rows, cols = linear_sum_assignment(cost)
    return {int(r): int(c) for r, c in zip(rows, cols)}


def attribute_conflicts(person: dict, face: FaceAttributes, age_margin: float = 5.0) -> list[str]:
    """Which of gender, age and emotion the MLLM person and DeepFace's face disagree on."""
    conflicts = []
    gender = normalize_gender(person.get("gender"))
    if gender and face.gender and gender != face.gender:
        conflicts.append("gender")
    age_range = mllm_age_range(person.get("age"))
    if age_range and face.age is not None and not age_range[0] - age_margin <= face.age <= age_range[1] + age_margin:
        conflicts.append("age")
    emotions = mllm_emotion_classes(person.get("emotion"))
    if emotions and face.emotion and face.emotion not in emotions:
        conflicts.append("emotion")
    return conflicts


def mllm_emotion_classes(value) -> set[str] | None:
    """The DeepFace emotion classes an MLLM's emotion text is compatible with: "worried or
    concerned" -> {fear, sad, neutral}; None when it names no known emotion (no conflict possible)."""
    if value is None:
        return None
    words = re.findall(r"[a-z]+", str(value).lower())
    classes = set().union(*(EMOTION_WORDS.get(w, set()) for w in words)) if words else set()
    return classes or None


def normalize_gender(value) -> str | None:
    return GENDER_WORDS.get(str(value).strip().lower()) if value is not None else None


def mllm_age_range(value) -> tuple[float, float] | None:
    """The MLLM's age as a year range: "34" -> (29, 39), "30-40" -> (30, 40), "adult" -> (18, 65)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)]
    if len(numbers) >= 2:
        return (min(numbers[:2]), max(numbers[:2]))
    if numbers:
        return (numbers[0] - 5, numbers[0] + 5)
    for word in sorted(AGE_WORDS, key=len, reverse=True):  # "young adult" before "adult"
        if word in text:
            return AGE_WORDS[word]
    return None


def augmentations(crop: np.ndarray) -> list[np.ndarray]:
    """Test-time augmentations of a face crop: as is, mirrored, zoomed in and out, darker, brighter."""
    height, width = crop.shape[:2]
    inset = crop[height // 10 : height - height // 10, width // 10 : width - width // 10]
    outset = cv2.copyMakeBorder(crop, height // 8, height // 8, width // 8, width // 8, cv2.BORDER_REPLICATE)
    return [
        crop,
        crop[:, ::-1],
        inset,
        outset,
        np.clip(crop.astype(np.float32) * 0.75, 0, 255).astype(np.uint8),
        np.clip(crop.astype(np.float32) * 1.25, 0, 255).astype(np.uint8),
    ]


def vote(answers: list[FaceAttributes]) -> FaceAttributes:
    """One answer from augmented ones: median age; for the labelled attributes the label
    with the highest mean probability."""
    ages = [a.age for a in answers if a.age is not None]
    result = FaceAttributes(age=float(np.median(ages)) if ages else None)
    for attribute in ("gender", "emotion", "race"):
        tables = [a.scores[attribute] for a in answers if attribute in a.scores]
        if not tables:
            continue
        mean = {label: float(np.mean([t.get(label, 0.0) for t in tables])) for label in tables[0]}
        result.scores[attribute] = mean
        setattr(result, attribute, max(mean, key=mean.get))
    return result


def _settle_conflicts(
    models: RefinementModels, image: np.ndarray, person: dict, character: CharacterRefinement
) -> None:
    """On a disagreement, DeepFace again under test-time augmentation: its vote replaces its
    first answer, and what still disagrees is a conflict (DeepFace adopted by `adopt_attributes`);
    what the vote agrees with is settled in the MLLM's favour. Both are recorded as disputes."""
    if character.face is None or models.attributes is None:
        return
    disputed = attribute_conflicts(person, character.face)
    if not disputed:
        return
    variants = augmentations(_crop(image, character.face_box))
    character.face = vote(models.attributes.analyze(variants))
    character.tta_runs = len(variants)
    character.conflicts = [c for c in attribute_conflicts(person, character.face) if c in disputed]
    voted = deepface_values(character.face)
    character.disputes = [
        {
            "field": name,
            "mllm": _text(person.get(name)),
            "deepface": voted.get(name),
            "adopted": "deepface" if name in character.conflicts else "mllm",
            "tta_runs": character.tta_runs,
        }
        for name in disputed
    ]


def deepface_values(face: FaceAttributes | None) -> dict[str, str]:
    """DeepFace's age, gender and emotion in the words of a shooting script ("34", "female", "sad")."""
    if face is None:
        return {}
    values = {
        "age": str(int(round(face.age))) if face.age is not None else None,
        "gender": {"man": "male", "woman": "female"}.get(face.gender or "", face.gender),
        "emotion": face.emotion,
    }
    return {k: v for k, v in values.items() if v}


def adopt_attributes(person: dict, character: CharacterRefinement) -> None:
    """The age, gender and emotion a person keeps: DeepFace's where it still conflicts with the
    MLLM after the vote, the MLLM's otherwise, DeepFace's where the MLLM said nothing."""
    deepface = deepface_values(character.face)
    for name in ATTRIBUTES:
        mllm = _text(person.get(name))
        if name in character.conflicts and deepface.get(name):
            value, source = deepface[name], "deepface"
        elif mllm is not None:
            value, source = mllm, "mllm"
        elif deepface.get(name):
            value, source = deepface[name], "deepface"
        else:
            value, source = None, None
        setattr(character, name, value)
        if source:
            character.sources[name] = source


def _text(value) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def median_depth(depth_map: np.ndarray, box: Box) -> float | None:
    x0, y0, x1, y1 = box
    region = depth_map[max(0, y0) : y1, max(0, x0) : x1]
    return float(np.median(region)) if region.size else None


def body_box_from_face(face: Box, width: int, height: int) -> Box:
    """A body box guessed from a face: three face widths across, seven face heights down
    from the top of the head (the proportions of a standing adult), clipped to the image."""
    x0, y0, x1, y1 = face
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    return (max(0, int(cx - 1.5 * w)), max(0, y0), min(width, int(cx + 1.5 * w)), min(height, int(y0 + 7.5 * h)))


def _add_postures(models: RefinementModels, image: np.ndarray, characters: list[CharacterRefinement]) -> None:
    located = [c for c in characters if c.face_box is not None]
    if models.pose is None or not located:
        return
    height, width = image.shape[:2]
    bodies = [body_box_from_face(c.face_box, width, height) for c in located]
    for character, pose in zip(located, models.pose.estimate([image], [bodies])[0]):
        character.posture = posture_from_keypoints(pose.keypoints, pose.scores)


def _crop(image: np.ndarray, box: Box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[max(0, y0) : y1, max(0, x0) : x1]

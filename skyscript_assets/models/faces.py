"""Faces: where they are (OpenCV's Haar cascades, which ship inside the opencv wheel) and
what they look like (DeepFace's age, gender, emotion and race models).

DeepFace looks its weights up under `$DEEPFACE_HOME/.deepface/weights/` and would download
missing ones; `FaceAttributeModel.load` checks the files first, so a missing model is
reported as not run and nothing is fetched.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from skyscript_assets.models.base import WeightsMissing

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class FaceBox:
    box: Box
    score: float  # the cascade's neighbour count: > 0, not a probability


class HaarFaceDetector:
    """Frontal and profile Haar cascades from `cv2.data`; CPU only, no weights to fetch."""

    device = "cpu"

    def __init__(
        self,
        frontal: cv2.CascadeClassifier,
        profile: cv2.CascadeClassifier | None,
        *,
        min_size_fraction: float,
        min_neighbors: int,
        scale_factor: float,
        work_height: int,
    ) -> None:
        self.work_height = work_height
        self.frontal = frontal
        self.profile = profile
        self.min_size_fraction = min_size_fraction
        self.min_neighbors = min_neighbors
        self.scale_factor = scale_factor

    @classmethod
    def load(
        cls,
        cascade_dir: str | Path | None = None,
        *,
        profiles: bool = False,
        min_size_fraction: float = 0.04,
        min_neighbors: int = 5,
        scale_factor: float = 1.15,
        work_height: int = 360,
    ) -> HaarFaceDetector:
        """`profiles`: also run the profile cascade both ways (3x the time, finds turned heads).
        `work_height`: taller frames are shrunk to it before the cascades run (a 720p frame
        takes a quarter of the time at 360 rows; faces smaller than `min_size_fraction` of
        the frame are ignored anyway). The defaults favour speed; pixelation uses a more
        thorough setting (`stages.pixelation.privacy_face_detector`)."""
        folder = Path(cascade_dir or cv2.data.haarcascades)
        frontal = _cascade(folder / "haarcascade_frontalface_default.xml")
        profile = _cascade(folder / "haarcascade_profileface.xml") if profiles else None
        return cls(
            frontal,
            profile,
            min_size_fraction=min_size_fraction,
            min_neighbors=min_neighbors,
            scale_factor=scale_factor,
            work_height=work_height,
        )

    def detect(self, images: list[np.ndarray]) -> list[list[FaceBox]]:
        """Faces in each RGB uint8 image, overlapping hits of the cascades merged."""
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> list[FaceBox]:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, self.work_height / gray.shape[0])
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = self._detect_gray(cv2.equalizeHist(gray))
        if scale == 1.0:
            return faces
        full_height, full_width = image.shape[:2]
        return [
            FaceBox(
                (
                    max(0, int(b.box[0] / scale)),
                    max(0, int(b.box[1] / scale)),
                    min(full_width, int(np.ceil(b.box[2] / scale))),
                    min(full_height, int(np.ceil(b.box[3] / scale))),
                ),
                b.score,
            )
            for b in faces
        ]

    def _detect_gray(self, gray: np.ndarray) -> list[FaceBox]:
        height, width = gray.shape
        side = max(12, int(min(height, width) * self.min_size_fraction))
        found = self._run(self.frontal, gray, side)
        if self.profile is not None:
            found += self._run(self.profile, gray, side)
            # the profile cascade only knows faces turned one way: mirror for the other
            found += [
                FaceBox((width - b.box[2], b.box[1], width - b.box[0], b.box[3]), b.score)
                for b in self._run(self.profile, cv2.flip(gray, 1), side)
            ]
        return _merge_overlapping(found)

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray, side: int) -> list[FaceBox]:
        rects, _, weights = cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
            outputRejectLevels=True,
        )
        return [
            FaceBox((int(x), int(y), int(x + w), int(y + h)), float(s))
            for (x, y, w, h), s in zip(rects, np.ravel(weights) if len(rects) else [])
        ]


def _cascade(path: Path) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise WeightsMissing(path, "OpenCV's Haar cascades; OpenCV 5 wheels no longer ship them")
    return cascade


def _merge_overlapping(faces: list[FaceBox], min_iou: float = 0.3) -> list[FaceBox]:
    kept: list[FaceBox] = []
    for face in sorted(faces, key=lambda f: -f.score):
        if all(box_iou(face.box, other.box) < min_iou for other in kept):
            kept.append(face)
    return kept


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# DeepFace's file stem per attribute; the extension follows its backend engine.
ATTRIBUTE_WEIGHTS = {
    "age": "age_model_weights",
    "gender": "gender_model_weights",
    "emotion": "facial_expression_model_weights",
    "race": "race_model_single_batch",
}
_MODEL_NAMES = {"age": "Age", "gender": "Gender", "emotion": "Emotion", "race": "Race"}
_EXTENSIONS = {"onnx": ".onnx", "pytorch": ".pth", "tensorflow": ".h5"}


@dataclass
class FaceAttributes:
    """DeepFace's answer for one face; an attribute whose model did not run stays None."""

    age: float | None = None
    gender: str | None = None  # "man" | "woman"
    emotion: str | None = None
    race: str | None = None
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # per attribute, label -> probability


class FaceAttributeModel:
    """DeepFace's attribute models, built once from local weight files; `analyze(crops)` is batched."""

    def __init__(self, models: dict[str, object], not_run: dict[str, str], device: str, home: Path) -> None:
        self.models = models
        self.not_run = not_run  # attribute -> "not run: no weights at PATH"
        self.device = device
        self.home = home

    @classmethod
    def load(
        cls,
        deepface_home: str | Path | None = None,
        attributes: tuple[str, ...] = ("age", "gender", "emotion", "race"),
    ) -> FaceAttributeModel:
        """Weights from `deepface_home` (default $DEEPFACE_HOME, else ~). DeepFace runs on
        onnxruntime unless DEEPFACE_BACKEND_ENGINE names another engine."""
        home = _home(deepface_home)
        with _deepface_home(home):
            from deepface.commons.backend_utils import get_backend_engine
            from deepface.modules import modeling

            extension = _EXTENSIONS[get_backend_engine()]
            models, not_run = {}, {}
            for attribute in attributes:
                path = home / ".deepface" / "weights" / (ATTRIBUTE_WEIGHTS[attribute] + extension)
                if not path.is_file():
                    not_run[attribute] = str(WeightsMissing(path))
                    continue
                # a fresh instance, not deepface's process-wide cache, so each home gets its own weights
                models[attribute] = modeling.get_model_class("facial_attribute", _MODEL_NAMES[attribute])()
        if not models:
            raise WeightsMissing(home / ".deepface" / "weights", "DeepFace age/gender/emotion/race")
        return cls(models, not_run, _deepface_device(models), home)

    def analyze(self, face_crops: list[np.ndarray]) -> list[FaceAttributes]:
        """Attributes of each RGB face crop (any size; letterboxed to 224x224 as DeepFace does)."""
        if not face_crops:
            return []
        from deepface.models.demography.DemographyUtils import EMOTION_LABELS, GENDER_LABELS, RACE_LABELS
        from deepface.modules.preprocessing import resize_image

        batch = np.concatenate(
            [resize_image(np.ascontiguousarray(crop[:, :, ::-1]), (224, 224)) for crop in face_crops]
        )
        results = [FaceAttributes() for _ in face_crops]
        for attribute, model in self.models.items():
            if attribute == "age":
                for result, age in zip(results, np.atleast_1d(model.predict(batch))):
                    result.age = float(age)
                continue
            labels = {"gender": GENDER_LABELS, "emotion": EMOTION_LABELS, "race": RACE_LABELS}[attribute]
            probs = np.atleast_2d(np.asarray(model.predict(batch), dtype=np.float64))
            probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
            for result, row in zip(results, probs):
                scores = {label.lower(): float(p) for label, p in zip(labels, row)}
                result.scores[attribute] = scores
                setattr(result, attribute, max(scores, key=scores.get))
        return results


class FaceEmbedder:
    """DeepFace's ArcFace recognition graph, built once from a local weight file; `embed(crops)`
    gives one 512-d vector per RGB face crop (batched). Clusters faces into characters."""

    weights = "arcface_weights"

    def __init__(self, model: object, path: Path) -> None:
        self.model = model
        self.path = path
        self.model_id = f"deepface/ArcFace ({path.name})"

    @classmethod
    def load(cls, deepface_home: str | Path | None = None) -> FaceEmbedder:
        home = _home(deepface_home)
        with _deepface_home(home):
            from deepface.commons.backend_utils import get_backend_engine
            from deepface.modules import modeling

            path = home / ".deepface" / "weights" / (cls.weights + _EXTENSIONS[get_backend_engine()])
            if not path.is_file():
                raise WeightsMissing(path, "DeepFace ArcFace")
            return cls(modeling.get_model_class("facial_recognition", "ArcFace")(), path)

    def embed(self, face_crops: list[np.ndarray]) -> np.ndarray:
        from deepface.modules.preprocessing import resize_image

        if not face_crops:
            return np.zeros((0, 512), np.float32)
        batch = np.concatenate(
            [resize_image(np.ascontiguousarray(crop[:, :, ::-1]), (112, 112)) for crop in face_crops]
        )
        return np.asarray(self.model.predict(batch), np.float32).reshape(len(face_crops), -1)


def _home(deepface_home: str | Path | None) -> Path:
    """`deepface_home`, else $DEEPFACE_HOME, else ~; DeepFace runs on onnxruntime unless
    DEEPFACE_BACKEND_ENGINE names another engine."""
    os.environ.setdefault("DEEPFACE_BACKEND_ENGINE", "onnx")
    return Path(deepface_home or os.environ.get("DEEPFACE_HOME") or Path.home()).expanduser()


@contextlib.contextmanager
def _deepface_home(home: Path):
    """DeepFace reads DEEPFACE_HOME when it builds a model: point it at `home` for that moment only."""
    previous = os.environ.get("DEEPFACE_HOME")
    os.environ["DEEPFACE_HOME"] = str(home)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("DEEPFACE_HOME", None)
        else:
            os.environ["DEEPFACE_HOME"] = previous


def _deepface_device(models: dict[str, object]) -> str:
    for model in models.values():
        session = getattr(model, "model", None)
        if hasattr(session, "get_providers") and "CUDAExecutionProvider" in session.get_providers():
            return "cuda"
    return "cpu"

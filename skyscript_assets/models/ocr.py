"""On-screen text (RapidOCR: PP-OCR detection and recognition graphs that ship in its wheel)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TextBox:
    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the image read
    score: float


class TextReader:
    """`load` once; `read(images)` finds and reads text, `read_lines(crops)` reads single-line crops."""

    device = "cpu"

    def __init__(self, engine, min_score: float) -> None:
        self.engine = engine
        self.min_score = min_score

    @classmethod
    def load(cls, *, min_score: float = 0.5) -> "TextReader":
        from rapidocr_onnxruntime import RapidOCR

        return cls(RapidOCR(), min_score)

    def read(self, images: list[np.ndarray]) -> list[list[TextBox]]:
        """Text boxes of each RGB image in reading order (top to bottom, then left to right)."""
        found = []
        for image in images:
            result, _ = self.engine(np.ascontiguousarray(image[:, :, ::-1]))  # RapidOCR takes BGR like cv2
            boxes = []
            for polygon, text, score in result or []:
                if float(score) < self.min_score or not str(text).strip():
                    continue
                xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
                boxes.append(TextBox(str(text).strip(), (int(min(xs)), int(min(ys)), int(max(xs)) + 1, int(max(ys)) + 1),
                                     float(score)))
            found.append(reading_order(boxes))
        return found

    def read_lines(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Recognition only, for crops that hold exactly one line of text (RGB)."""
        lines = []
        for crop in crops:
            result, _ = self.engine(np.ascontiguousarray(crop[:, :, ::-1]), use_det=False, use_cls=False, use_rec=True)
            text, score = (result[0][0], float(result[0][1])) if result else ("", 0.0)
            lines.append((str(text).strip(), score) if score >= self.min_score else ("", score))
        return lines


def reading_order(boxes: list[TextBox]) -> list[TextBox]:
    """Group boxes into lines (vertical centres within half a box height), then left to right."""
    lines: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: (b.box[1] + b.box[3]) / 2):
        centre, height = (box.box[1] + box.box[3]) / 2, box.box[3] - box.box[1]
        if lines:
            last = lines[-1][-1]
            if abs(centre - (last.box[1] + last.box[3]) / 2) <= max(height, last.box[3] - last.box[1]) / 2:
                lines[-1].append(box)
                continue
        lines.append([box])
    return [box for line in lines for box in sorted(line, key=lambda b: b.box[0])]

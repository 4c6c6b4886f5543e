"""Shot size measured from face and body boxes, reconciled with the MLLM's shot type.

The measured size uses the same thresholds as the offline annotator: the tallest face's
share of the frame height (a close-up fills a quarter of it or more), or, with no face, the
tallest body's. Where the MLLM's size is more than one step from the measured one, the
measurement wins, as the paper lets the vision models win over the MLLM; within one step the
MLLM's finer judgement (framing, what the shot is about) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from skyscript_assets.models.mllm.baseline import BODY_SHOT_SIZES, FACE_SHOT_SIZES, shot_size

SIZE_ORDER = ["extreme_close_up", "close_up", "medium", "full", "wide"]  # closest first
PERSON_WORDS = {"person", "people", "man", "woman", "boy", "girl", "child", "men", "women", "human"}


@dataclass(frozen=True)
class ReconciledSize:
    size: str | None
    mllm: str | None
    measured: str | None
    disagreed: bool  # more than one step apart: the measured size was adopted


def measured_shot_size(face_heights: list[float], body_heights: list[float], frame_height: int) -> str | None:
    if face_heights:
        return shot_size(max(face_heights) / frame_height, FACE_SHOT_SIZES)
    if body_heights:
        return shot_size(max(body_heights) / frame_height, BODY_SHOT_SIZES)
    return None


def reconcile_shot_size(mllm: str | None, measured: str | None) -> ReconciledSize:
    mllm = mllm if mllm in SIZE_ORDER else None
    if mllm is None or measured is None:
        return ReconciledSize(mllm or measured, mllm, measured, False)
    disagreed = abs(SIZE_ORDER.index(mllm) - SIZE_ORDER.index(measured)) > 1
    return ReconciledSize(measured if disagreed else mllm, mllm, measured, disagreed)


def is_person(name: str | None) -> bool:
    return bool(name) and name.strip().lower() in PERSON_WORDS

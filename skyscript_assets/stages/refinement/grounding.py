"""Grounding the MLLM's objects: each named object gets a detector box or is flagged a phantom.

A phantom is kept (the MLLM may see what the detector cannot) but flagged and counted,
and recorded as a loss with reason `ungrounded_object`. Without detector weights nothing
is flagged: the frames are marked not run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skyscript_assets.models.base import bad_image_loss, is_rgb_image
from skyscript_assets.models.detector import normalize_object_name
from skyscript_assets.schema import FlagRecord, LossRecord
from skyscript_assets.stages.refinement.inputs import AnnotatedKeyframe, decode_image
from skyscript_assets.stages.step import EpisodeResult

STAGE = "detections"
STAGE_VERSION = "1"


@dataclass
class GroundedObject:
    name: str  # as the MLLM wrote it
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 pixels
    score: float | None = None
    phantom: bool | None = None  # None: not checked (detector not run)


@dataclass
class FrameGrounding:
    item: str
    objects: list[GroundedObject] = field(default_factory=list)
    status: str = "ok"  # or "not run: ..."

    @property
    def phantom_count(self) -> int:
        return sum(1 for o in self.objects if o.phantom)


def ground_frames(
    detector, frames: list[tuple[str, np.ndarray, list[str]]], not_run_reason: str | None = None
) -> tuple[list[FrameGrounding], list[LossRecord], list[FlagRecord]]:
    """Ground the object names of each (item id, RGB image, MLLM object names) frame.

    `detector` is an `OpenVocabularyDetector`, or None with `not_run_reason` (e.g. the
    `WeightsMissing` message) when its weights are absent.
    """
    if detector is None:
        reason = not_run_reason or "not run: no detector"
        return [FrameGrounding(item, [GroundedObject(n) for n in names], reason) for item, _, names in frames], [], []
    losses = [bad_image_loss(STAGE, item, image) for item, image, _ in frames if not is_rgb_image(image)]
    frames = [frame for frame in frames if is_rgb_image(frame[1])]
    detections = detector.detect([image for _, image, _ in frames], [names for _, _, names in frames])
    results, flags = [], []
    for (item, _, names), found in zip(frames, detections):
        frame = FrameGrounding(item, assign_boxes(names, found))
        results.append(frame)
        # a phantom is kept in the annotation and flagged: a quality signal, not a loss
        flags += [
            FlagRecord(
                stage=STAGE,
                item=item,
                reason="ungrounded_object",
                detail=f"phantom object {o.name!r}: no box above the detector's thresholds",
            )
            for o in frame.objects
            if o.phantom
        ]
    return results, losses, flags


def assign_boxes(names: list[str], detections) -> list[GroundedObject]:
    """Each named object takes the best remaining box of its name (two cups take two boxes)."""
    pool: dict[str, list] = {}
    for detection in sorted(detections, key=lambda d: -d.score):
        pool.setdefault(detection.name, []).append(detection)
    objects = []
    for name in names:
        boxes = pool.get(normalize_object_name(name))
        if boxes:
            best = boxes.pop(0)
            objects.append(GroundedObject(name, best.box, best.score, phantom=False))
        else:
            objects.append(GroundedObject(name, phantom=True))
    return objects


def phantom_rate(frames: list[FrameGrounding]) -> float | None:
    """Share of checked objects flagged as phantoms; None when nothing was checked."""
    checked = [o for f in frames for o in f.objects if o.phantom is not None]
    return sum(1 for o in checked if o.phantom) / len(checked) if checked else None


def ground_episode(
    detector, episode_id: str, frames: list[AnnotatedKeyframe], *, not_run: str | None = None
) -> EpisodeResult:
    """Ground every keyframe's object names (the detector loaded once by the caller, or None with `not_run`)."""
    named = [f for f in frames if f.object_names]
    inputs = [
        (f.item, decode_image(f.uri) if detector is not None else np.zeros((1, 1, 3), np.uint8), f.object_names)
        for f in named
    ]
    grounded, losses, flags = ground_frames(detector, inputs, not_run_reason=not_run)
    objects = sum(len(f.object_names) for f in named)
    return EpisodeResult(
        episode_id,
        grounded,
        losses,
        flags,
        given=objects if detector is not None else 0,
        model_id=getattr(detector, "model_id", "") if detector is not None else "",
        not_run=not_run if detector is None and objects else None,
        summary={"objects": objects, "checked": objects if detector is not None else 0, "phantoms": len(flags)},
    )

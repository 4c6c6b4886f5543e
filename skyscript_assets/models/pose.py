"""Body keypoints (ViTPose through transformers) and the posture they show.

ViTPose is top-down: it takes person boxes and returns the 17 COCO keypoints per box.
`posture_from_keypoints` turns them into standing, sitting, lying, crouching or walking
by the geometric rule documented on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skyscript_assets.models.base import PretrainedModel, run_in_batches

# COCO keypoint order, as ViTPose outputs it.
COCO_KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
POSTURES = ("standing", "sitting", "lying", "crouching", "walking")


@dataclass(frozen=True)
class BodyPose:
    keypoints: np.ndarray  # (17, 2) pixel x, y in COCO order
    scores: np.ndarray  # (17,) confidence per keypoint


class PoseEstimator(PretrainedModel):
    """`load` once, then `estimate(images, boxes_per_image)`; boxes are (x0, y0, x1, y1) pixels."""

    model_class = "VitPoseForPoseEstimation"

    @classmethod
    def load(cls, name_or_path: str | Path, device: str = "cpu", *, batch_size: int = 8) -> PoseEstimator:
        return cls._from_local(name_or_path, device, batch_size)

    def estimate(
        self, images: list[np.ndarray], boxes_per_image: list[list[tuple[float, float, float, float]]]
    ) -> list[list[BodyPose]]:
        import torch

        poses: list[list[BodyPose]] = [[] for _ in images]
        todo = [i for i, boxes in enumerate(boxes_per_image) if boxes]

        def run(batch: list[int]) -> list[list[BodyPose]]:
            # the processor wants COCO boxes: x, y, width, height
            coco = [[[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in boxes_per_image[i]] for i in batch]
            inputs = self.processor(images=[images[i] for i in batch], boxes=coco, return_tensors="pt").to(self.device)
            with torch.no_grad():
                outputs = self.model(**inputs)
            return [
                [BodyPose(p["keypoints"].float().cpu().numpy(), p["scores"].float().cpu().numpy()) for p in people]
                for people in self.processor.post_process_pose_estimation(outputs, boxes=coco)
            ]

        for index, found in zip(todo, run_in_batches(todo, self.batch_size, run)):
            poses[index] = found
        return poses


def posture_from_keypoints(keypoints: np.ndarray, scores: np.ndarray, min_score: float = 0.3) -> str | None:
    """Posture from 17 COCO keypoints (image y grows downwards); None when too few are visible.

    The rule, in the order it is tried:
    * lying: the shoulder-to-hip trunk is closer to horizontal than to vertical
      (|dx| > |dy|), or, without hips, the body's keypoints spread wider than tall;
    * crouching: the hips dropped close to the feet, the ankles less than 0.6 trunk
      lengths below the hips (a squat folds thighs and shins together);
    * sitting: the thighs near horizontal, |hip y - knee y| < 0.5 trunk lengths, with
      the feet (where seen) hanging at least 0.6 trunk lengths below the hips;
    * walking: legs upright but apart, the horizontal ankle gap >= 0.35 trunk lengths
      (a stride);
    * standing: legs upright under the hips.
    """
    visible = scores >= min_score
    point = {name: keypoints[i] for i, name in enumerate(COCO_KEYPOINTS) if visible[i]}

    def mid(a: str, b: str) -> np.ndarray | None:
        found = [point[n] for n in (a, b) if n in point]
        return np.mean(found, axis=0) if found else None

    shoulders, hips = mid("left_shoulder", "right_shoulder"), mid("left_hip", "right_hip")
    knees, ankles = mid("left_knee", "right_knee"), mid("left_ankle", "right_ankle")
    if shoulders is None or hips is None:
        if len(point) >= 5:
            xs, ys = zip(*point.values())
            return "lying" if (max(xs) - min(xs)) > 1.5 * (max(ys) - min(ys)) else None
        return None
    trunk = hips - shoulders
    trunk_length = float(np.hypot(*trunk))
    if trunk_length < 1e-6:
        return None
    if abs(trunk[0]) > abs(trunk[1]):
        return "lying"
    if knees is None:
        return None
    if ankles is not None and (ankles[1] - hips[1]) / trunk_length < 0.6:
        return "crouching"
    if abs(knees[1] - hips[1]) / trunk_length < 0.5:
        return "sitting"
    if "left_ankle" in point and "right_ankle" in point:
        gap = abs(point["left_ankle"][0] - point["right_ankle"][0]) / trunk_length
        if gap >= 0.35:
            return "walking"
    return "standing"

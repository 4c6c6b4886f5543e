import numpy as np
import pytest
import skimage.data

from skyscript_assets.models.base import WeightsMissing
from skyscript_assets.models.depth import DepthEstimator
from skyscript_assets.models.pose import COCO_KEYPOINTS, PoseEstimator, posture_from_keypoints
from skyscript_assets.stages.refinement.characters import median_depth


def test_tiny_depth_anything_gives_a_map_per_image_at_its_size(depth_dir):
    estimator = DepthEstimator.load(depth_dir, batch_size=2)
    images = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    maps = estimator.estimate(images)
    assert [m.shape for m in maps] == [i.shape[:2] for i in images]
    assert all(m.dtype == np.float32 and np.isfinite(m).all() for m in maps)
    assert median_depth(maps[0], (10, 10, 50, 60)) == pytest.approx(float(np.median(maps[0][10:60, 10:50])))


def test_tiny_vitpose_gives_17_keypoints_per_person_box(vitpose_dir):
    estimator = PoseEstimator.load(vitpose_dir)
    image = skimage.data.astronaut()
    boxes = [(100, 50, 300, 500), (330, 60, 420, 180)]
    poses = estimator.estimate([image, image], [boxes, []])
    assert len(poses[0]) == 2 and poses[1] == []
    for pose, (x0, y0, x1, y1) in zip(poses[0], boxes):
        assert pose.keypoints.shape == (17, 2) and pose.scores.shape == (17,)
        # pixel coordinates around their own box (the processor widens boxes to 3:4 and by 25 %)
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)
        assert (np.abs(pose.keypoints[:, 0] - cx) <= side).all() and (np.abs(pose.keypoints[:, 1] - cy) <= side).all()
    assert abs(poses[0][1].keypoints[:, 0].mean() - 375) < abs(poses[0][0].keypoints[:, 0].mean() - 375)


def test_missing_depth_or_pose_weights_are_not_run(tmp_path):
    with pytest.raises(WeightsMissing, match="not run: no weights at"):
        DepthEstimator.load(tmp_path / "depth-anything-v2-small")
    with pytest.raises(WeightsMissing, match="not run: no weights at"):
        PoseEstimator.load(tmp_path / "vitpose-base")


def _skeleton(**points) -> tuple[np.ndarray, np.ndarray]:
    """17 COCO keypoints from the named ones (x, y); the rest invisible."""
    keypoints, scores = np.zeros((17, 2), np.float32), np.zeros(17, np.float32)
    for name, xy in points.items():
        keypoints[COCO_KEYPOINTS.index(name)] = xy
        scores[COCO_KEYPOINTS.index(name)] = 0.9
    return keypoints, scores


STANDING = dict(
    left_shoulder=(90, 100),
    right_shoulder=(110, 100),
    left_hip=(93, 200),
    right_hip=(107, 200),
    left_knee=(93, 290),
    right_knee=(107, 290),
    left_ankle=(94, 380),
    right_ankle=(106, 380),
)
POSTURES = {
    "standing": STANDING,
    "walking": {**STANDING, "left_ankle": (60, 375), "right_ankle": (140, 378)},
    "sitting": {
        **STANDING,
        "left_knee": (150, 205),
        "right_knee": (165, 205),
        "left_ankle": (150, 290),
        "right_ankle": (165, 290),
    },
    "crouching": {
        **STANDING,
        "left_hip": (93, 230),
        "right_hip": (107, 230),
        "left_knee": (130, 210),
        "right_knee": (140, 210),
        "left_ankle": (100, 270),
        "right_ankle": (110, 270),
    },
    "lying": dict(
        left_shoulder=(100, 300),
        right_shoulder=(100, 320),
        left_hip=(200, 305),
        right_hip=(200, 325),
        left_knee=(290, 305),
        right_knee=(290, 322),
        left_ankle=(380, 306),
        right_ankle=(380, 321),
    ),
}


@pytest.mark.parametrize("posture", list(POSTURES))
def test_posture_rule_on_hand_made_skeletons(posture):
    assert posture_from_keypoints(*_skeleton(**POSTURES[posture])) == posture


def test_posture_is_unknown_without_trunk_or_legs():
    assert posture_from_keypoints(*_skeleton(nose=(10, 10), left_eye=(8, 8))) is None
    upper_body = {k: v for k, v in STANDING.items() if "knee" not in k and "ankle" not in k}
    assert posture_from_keypoints(*_skeleton(**upper_body)) is None
    keypoints, scores = _skeleton(**STANDING)
    assert posture_from_keypoints(keypoints, scores * 0.1) is None  # nothing confident enough

"""The transformers wrappers on CUDA give what they give on CPU (run where a GPU is lent)."""

import numpy as np
import pytest
import skimage.data

from skyscript_assets.models.depth import DepthEstimator
from skyscript_assets.models.detector import OpenVocabularyDetector
from skyscript_assets.models.pose import PoseEstimator

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_detector_on_cuda_matches_cpu(grounding_dino_dir):
    image, names = skimage.data.coffee(), [["cup", "table"]]
    cpu = OpenVocabularyDetector.load(grounding_dino_dir, "cpu", box_threshold=0.0, text_threshold=0.0)
    gpu = OpenVocabularyDetector.load(grounding_dino_dir, "auto", box_threshold=0.0, text_threshold=0.0)
    assert gpu.device == "cuda"
    a, b = cpu.detect([image], names)[0], gpu.detect([image], names)[0]
    assert [d.name for d in a] == [d.name for d in b]
    assert np.allclose([d.box for d in a], [d.box for d in b], atol=1.0)


def test_depth_and_pose_on_cuda_match_cpu(depth_dir, vitpose_dir):
    image = skimage.data.astronaut()
    depth_cpu = DepthEstimator.load(depth_dir, "cpu").estimate([image])[0]
    depth_gpu = DepthEstimator.load(depth_dir, "cuda").estimate([image])[0]
    assert np.allclose(depth_cpu, depth_gpu, atol=1e-2 * max(1.0, float(np.abs(depth_cpu).max())))
    boxes = [[(100, 50, 300, 500)]]
    pose_cpu = PoseEstimator.load(vitpose_dir, "cpu").estimate([image], boxes)[0][0]
    pose_gpu = PoseEstimator.load(vitpose_dir, "cuda").estimate([image], boxes)[0][0]
    assert np.allclose(pose_cpu.keypoints, pose_gpu.keypoints, atol=2.0)

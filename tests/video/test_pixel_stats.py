"""The compiled per-frame statistics equal the OpenCV recipes they replace, pixel for pixel."""

import av
import cv2
import numpy as np
import pytest

from skyscript_assets.stages.video.pixel_stats import (
    content_distance,
    frame_statistics,
    laplacian_variance,
    thumbnail_and_histograms,
)
from skyscript_assets.stages.video.shots import THUMB_H, THUMB_W, _plane


def opencv_features(y, u, v):
    """The recipe as it was written with OpenCV before it was compiled."""
    thumb8 = cv2.resize(
        cv2.resize(y, (THUMB_W * 2, THUMB_H * 2), interpolation=cv2.INTER_NEAREST),
        (THUMB_W, THUMB_H),
        interpolation=cv2.INTER_AREA,
    )
    half = (THUMB_W // 2, THUMB_H // 2)
    u_small = cv2.resize(u, half, interpolation=cv2.INTER_NEAREST)
    v_small = cv2.resize(v, half, interpolation=cv2.INTER_NEAREST)
    hist = np.concatenate(
        [
            cv2.calcHist([thumb8], [0], None, [64], [0, 256]) / thumb8.size,
            cv2.calcHist([u_small], [0], None, [32], [0, 256]) / u_small.size,
            cv2.calcHist([v_small], [0], None, [32], [0, 256]) / v_small.size,
        ]
    ).reshape(-1)
    mean, std = cv2.meanStdDev(thumb8)
    return thumb8.astype(np.float32), hist, float(mean[0, 0]), float(std[0, 0])


def opencv_sharpness(gray, step):
    if step > 1:
        height, width = gray.shape
        gray = cv2.resize(gray, (-(-width // step), -(-height // step)), interpolation=cv2.INTER_NEAREST)
    _, std = cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_16S))
    return float(std[0, 0]) ** 2


def compiled_features(y, u, v):
    thumb, hist = np.empty((THUMB_H, THUMB_W), np.float32), np.empty(128, np.float32)
    mean, std = thumbnail_and_histograms(y, u, v, thumb, hist)
    return thumb, hist, mean, std


def assert_same_features(y, u, v):
    thumb, hist, mean, std = compiled_features(y, u, v)
    ref_thumb, ref_hist, ref_mean, ref_std = opencv_features(y, u, v)
    np.testing.assert_array_equal(thumb, ref_thumb)
    np.testing.assert_allclose(hist, ref_hist, rtol=0, atol=1e-7)
    assert mean == pytest.approx(ref_mean, abs=1e-9) and std == pytest.approx(ref_std, abs=1e-6)


# (luma height, width) and the chroma shape of 4:2:0, 4:2:2 and 4:4:4, odd sizes included
SHAPES = [
    ((1074, 1440), (537, 720)),
    ((332, 800), (166, 400)),
    ((720, 1280), (720, 640)),
    ((361, 641), (361, 641)),
    ((72, 128), (36, 64)),
    ((50, 90), (25, 45)),
    ((2160, 3840), (1080, 1920)),
]


@pytest.mark.parametrize("luma_shape, chroma_shape", SHAPES)
def test_features_equal_opencv_on_noise_and_gradients(luma_shape, chroma_shape):
    rng = np.random.default_rng(sum(luma_shape))
    y = rng.integers(0, 256, luma_shape, dtype=np.uint8)
    u, v = (rng.integers(0, 256, chroma_shape, dtype=np.uint8) for _ in range(2))
    assert_same_features(y, u, v)
    ramp = np.add.outer(np.arange(luma_shape[0]), np.arange(luma_shape[1])) % 256
    assert_same_features(ramp.astype(np.uint8), u, v)


def test_features_read_padded_plane_views():
    # Decoded planes are views with a line size wider than the picture.
    rng = np.random.default_rng(7)
    padded = rng.integers(0, 256, (360, 704), dtype=np.uint8)
    chroma = rng.integers(0, 256, (180, 352), dtype=np.uint8)
    assert_same_features(padded[:, :640], chroma[:, :320], chroma[:, 1:321])


@pytest.mark.parametrize(
    "shape, step",
    [
        ((1074, 1440), 3),
        ((332, 800), 2),
        ((360, 640), 1),
        ((2160, 3840), 10),
        ((5, 7), 1),
        ((1, 9), 1),
        ((9, 1), 1),
        ((401, 769), 2),
    ],
)
def test_sharpness_equals_opencv(shape, step):
    gray = np.random.default_rng(shape[0]).integers(0, 256, shape, dtype=np.uint8)
    assert laplacian_variance(gray, step) == pytest.approx(opencv_sharpness(gray, step), rel=1e-9)
    flat = np.full(shape, 77, np.uint8)
    assert laplacian_variance(flat, step) == 0.0


def test_both_equal_opencv_on_real_frames(shared_videos):
    checked = 0
    for path in sorted(shared_videos.glob("*.*")):
        if path.suffix not in {".mkv", ".mp4", ".webm"}:
            continue
        with av.open(str(path)) as container:
            for number, frame in enumerate(container.decode(video=0)):
                if number % 25:
                    continue
                y, u, v = (_plane(plane) for plane in frame.planes)
                assert_same_features(y, u, v)
                step = max(1, y.shape[1] // 384)
                assert laplacian_variance(y, step) == pytest.approx(opencv_sharpness(y, step), rel=1e-9)
                checked += 1
    assert checked > 100


def opencv_distance(thumb_a, hist_a, thumb_b, hist_b):
    """The content distance as it was written with OpenCV."""
    hist = cv2.norm(hist_a, hist_b, cv2.NORM_L1) / 6.0
    pixels = min(1.0, cv2.norm(thumb_a, thumb_b, cv2.NORM_L1) / thumb_a.size / 64.0)
    return 0.5 * hist + 0.5 * pixels


def test_one_call_a_frame_gives_the_features_the_distance_and_the_sharpness():
    rng = np.random.default_rng(3)
    frames = []
    for _ in range(6):
        y = rng.integers(0, 256, (332, 800), dtype=np.uint8)
        u, v = (rng.integers(0, 256, (166, 400), dtype=np.uint8) for _ in range(2))
        frames.append((y, u, v))
    frames.append((np.full((332, 800), 16, np.uint8), *frames[0][1:]))  # black after noise: the largest change
    previous = None
    for y, u, v in frames:
        thumb, hist = np.empty((THUMB_H, THUMB_W), np.float32), np.empty(128, np.float32)
        no_thumb, no_hist = np.empty((0, 0), np.float32), np.empty(0, np.float32)
        mean, std, distance, sharpness = frame_statistics(
            y, u, v, thumb, hist, previous[0] if previous else no_thumb, previous[1] if previous else no_hist, 2
        )
        ref_thumb, ref_hist, ref_mean, ref_std = opencv_features(y, u, v)
        np.testing.assert_array_equal(thumb, ref_thumb)
        assert mean == pytest.approx(ref_mean, abs=1e-9) and std == pytest.approx(ref_std, abs=1e-6)
        assert sharpness == pytest.approx(opencv_sharpness(y, 2), rel=1e-9)
        if previous is None:
            assert distance == -1.0
        else:
            # OpenCV subtracts the float32 histograms in float32: the same to float32 rounding.
            assert distance == pytest.approx(opencv_distance(previous[0], previous[1], thumb, hist), abs=1e-7)
            assert distance == content_distance(previous[0], previous[1], thumb, hist)
        previous = thumb, hist
    assert distance > 0.3  # the jump to black is measured, not clamped away
    _, _, _, unmeasured = frame_statistics(y, u, v, thumb, hist, no_thumb, no_hist, 0)
    assert unmeasured == -1.0

"""Per-frame pixel statistics of the keyframes stage, compiled, run without the GIL.

    mean, std = thumbnail_and_histograms(y, u, v, thumb, hist)   # every decoded frame
    variance = laplacian_variance(luma, step)                     # every keyframe candidate
    distance = content_distance(thumb_a, hist_a, thumb_b, hist_b)  # two frames' features
    mean, std, distance, variance = frame_statistics(...)        # all three, one call a frame

Why compiled: the decoder threads compute these on every frame while the others decode.
Written with OpenCV they are eight small calls a frame, each dropping and retaking the
GIL, so the decoder threads and the in-order consumer keep waiting on one another; one
numba call that drops the GIL once and reads only the pixels it samples costs a quarter
as much (popeye's 1440x1074 frames: ~220 -> ~35 µs). The results are exactly those of the
OpenCV recipes they replace (`tests/video/test_pixel_stats.py` compares both):

* thumbnail: nearest-neighbour decimation of the luma to twice the thumbnail size, then
  2x2 means rounded half up (`cv2.resize` INTER_NEAREST, then INTER_AREA);
* histograms: the thumbnail's luma in 64 bins; U and V, nearest-decimated to half the
  thumbnail, in 32 bins each; each histogram divided by its pixel count;
* sharpness: the variance of the 3x3 Laplacian (`cv2.Laplacian`, ksize 1, reflected
  borders) of every `step`-th pixel (nearest decimation, as `cv2.resize` samples).

`frame_statistics` is what the decoder threads call: one call a frame, so the GIL is
dropped and taken back once a frame (each hand-over of the GIL between threads can cost a
context switch), and the distance to the frame before it is computed there, not by the
in-order consumer.

Compiled on first use (~1 s) and cached beside this file, so later processes load it in
~0.2 s. Where the package folder is read-only (an image installed as root, run as another
user) and no NUMBA_CACHE_DIR is set, the cache goes to the temporary folder instead.
"""

from __future__ import annotations

import os
import tempfile

import numba
import numpy as np
from numba import njit

if not numba.config.CACHE_DIR and not os.access(os.path.dirname(os.path.abspath(__file__)), os.W_OK):
    numba.config.CACHE_DIR = os.path.join(tempfile.gettempdir(), "skyscript-numba-cache")


@njit(nogil=True, cache=True)
def _nearest_indices(source: int, target: int) -> np.ndarray:
    # cv2.resize INTER_NEAREST: floor(x / scale), scale = target / source, clamped.
    inverse = 1.0 / (target / source)
    indices = np.empty(target, np.int64)
    for x in range(target):
        indices[x] = min(int(np.floor(x * inverse)), source - 1)
    return indices


@njit(nogil=True, cache=True)
def thumbnail_and_histograms(
    y: np.ndarray, u: np.ndarray, v: np.ndarray, thumb: np.ndarray, hist: np.ndarray
) -> tuple[float, float]:
    """Fill `thumb` (float32, H x W: the grey thumbnail, 0..255) and `hist` (float32, 128:
    Y in 64 bins, U and V in 32 each, each summing to 1) from 8-bit planes; return the
    thumbnail's mean and standard deviation."""
    thumb_h, thumb_w = thumb.shape
    rows = _nearest_indices(y.shape[0], 2 * thumb_h)
    cols = _nearest_indices(y.shape[1], 2 * thumb_w)
    # Integer sums, and counts spread over four copies of the histogram: neighbouring pixels
    # mostly fall in the same bin, and one copy would make each count wait for the last.
    counts = np.zeros((4, 128), np.int32)
    total = 0
    squares = 0
    for ty in range(thumb_h):
        top, bottom = rows[2 * ty], rows[2 * ty + 1]
        for tx in range(thumb_w):
            left, right = cols[2 * tx], cols[2 * tx + 1]
            block = (
                np.int32(y[top, left])
                + np.int32(y[top, right])
                + np.int32(y[bottom, left])
                + np.int32(y[bottom, right])
            )
            pixel = (block + 2) >> 2
            thumb[ty, tx] = pixel
            counts[tx & 3, pixel >> 2] += 1
            total += pixel
            squares += pixel * pixel
    chroma_h, chroma_w = thumb_h // 2, thumb_w // 2
    chroma_rows = _nearest_indices(u.shape[0], chroma_h)
    chroma_cols = _nearest_indices(u.shape[1], chroma_w)
    for cy in range(chroma_h):
        row = chroma_rows[cy]
        for cx in range(chroma_w):
            col = chroma_cols[cx]
            counts[cx & 3, 64 + (u[row, col] >> 3)] += 1
            counts[cx & 3, 96 + (v[row, col] >> 3)] += 1
    count = thumb_h * thumb_w
    chroma_count = chroma_h * chroma_w
    for b in range(128):
        hist[b] = (counts[0, b] + counts[1, b] + counts[2, b] + counts[3, b]) / (count if b < 64 else chroma_count)
    mean = total / count
    return mean, np.sqrt(max(squares / count - mean * mean, 0.0))


@njit(nogil=True, cache=True)
def _sample_row(luma: np.ndarray, row: int, cols: np.ndarray, out: np.ndarray) -> None:
    # out[1:-1] = the sampled row; out[0] and out[-1] its BORDER_REFLECT_101 edges.
    width = len(cols)
    for j in range(width):
        out[j + 1] = luma[row, cols[j]]
    if width > 1:
        out[0], out[width + 1] = out[2], out[width - 1]
    else:
        out[0], out[width + 1] = out[1], out[1]


@njit(nogil=True, cache=True)
def laplacian_variance(luma: np.ndarray, step: int) -> float:
    """Variance of the Laplacian of every `step`-th pixel of an 8-bit plane."""
    rows = _nearest_indices(luma.shape[0], -(-luma.shape[0] // step))
    cols = _nearest_indices(luma.shape[1], -(-luma.shape[1] // step))
    height, width = len(rows), len(cols)
    # Three sampled rows at a time, each padded with its reflected edges: every pixel is
    # read once, the inner loop compiles to vector code, and nothing frame-sized is
    # allocated (a frame-sized scratch grid was a fresh mmap, page faults and all, per call).
    above = np.empty(width + 2, np.int32)
    here = np.empty(width + 2, np.int32)
    below = np.empty(width + 2, np.int32)
    _sample_row(luma, rows[1 if height > 1 else 0], cols, above)  # row -1 reflects to row 1
    _sample_row(luma, rows[0], cols, here)
    total = 0
    squares = 0
    for i in range(height):
        # row `height` reflects to row height - 2
        _sample_row(luma, rows[i + 1 if i + 1 < height else max(height - 2, 0)], cols, below)
        for j in range(1, width + 1):
            value = above[j] + below[j] + here[j - 1] + here[j + 1] - 4 * here[j]
            total += value
            squares += np.int64(value) * value
        above, here, below = here, below, above
    count = height * width
    mean = total / count
    return max(squares / count - mean * mean, 0.0)


@njit(cache=True)
def content_distance(thumb_a: np.ndarray, hist_a: np.ndarray, thumb_b: np.ndarray, hist_b: np.ndarray) -> float:
    """0..1: half colour-histogram change (three histograms, each L1 in 0..2), half pixel
    change (mean absolute difference of the thumbnails, scaled). Keeps the GIL: the
    consumer calls it between frames, where dropping it would only invite a switch."""
    hist_l1 = 0.0
    for a, b in zip(hist_a.ravel(), hist_b.ravel()):
        hist_l1 += abs(np.float64(a) - np.float64(b))
    thumb_l1 = 0.0
    for a, b in zip(thumb_a.ravel(), thumb_b.ravel()):
        thumb_l1 += abs(np.float64(a) - np.float64(b))
    return 0.5 * (hist_l1 / 6.0) + 0.5 * min(1.0, thumb_l1 / thumb_a.size / 64.0)


@njit(nogil=True, cache=True)
def frame_statistics(
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    thumb: np.ndarray,
    hist: np.ndarray,
    previous_thumb: np.ndarray,
    previous_hist: np.ndarray,
    sharpness_step: int,
) -> tuple[float, float, float, float]:
    """`thumbnail_and_histograms`, then the content distance to the previous frame's
    features (-1 when `previous_thumb` is empty) and the luma's Laplacian variance at
    `sharpness_step` (-1 when it is 0): (mean, std, distance, sharpness)."""
    mean, std = thumbnail_and_histograms(y, u, v, thumb, hist)
    distance = content_distance(previous_thumb, previous_hist, thumb, hist) if previous_thumb.size else -1.0
    sharpness = laplacian_variance(y, sharpness_step) if sharpness_step > 0 else -1.0
    return mean, std, distance, sharpness


@njit(nogil=True, cache=True)
def small_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, out: np.ndarray, full_range: bool) -> None:
    """Fill `out` (uint8, H x W x 3, TransNetV2's 27 x 48) with the frame in RGB: each output
    pixel the mean of a 4 x 4 grid of luma samples and a 2 x 2 grid of chroma samples spread
    over its block (an area average, as FFmpeg's downscaler makes it, from 24 reads), then
    BT.601 YUV -> RGB, limited or full range, as swscale converts 8-bit YUV by default."""
    out_h, out_w = out.shape[0], out.shape[1]
    for oy in range(out_h):
        for ox in range(out_w):
            luma = 0
            for sy in range(4):
                row = min(y.shape[0] - 1, ((4 * oy + sy) * y.shape[0] + y.shape[0] // 2) // (4 * out_h))
                for sx in range(4):
                    col = min(y.shape[1] - 1, ((4 * ox + sx) * y.shape[1] + y.shape[1] // 2) // (4 * out_w))
                    luma += y[row, col]
            cb = 0
            cr = 0
            for sy in range(2):
                row = min(u.shape[0] - 1, ((2 * oy + sy) * u.shape[0] + u.shape[0] // 2) // (2 * out_h))
                for sx in range(2):
                    col = min(u.shape[1] - 1, ((2 * ox + sx) * u.shape[1] + u.shape[1] // 2) // (2 * out_w))
                    cb += u[row, col]
                    cr += v[row, col]
            yy = luma / 16.0
            du = cb / 4.0 - 128.0
            dv = cr / 4.0 - 128.0
            if full_range:
                r = yy + 1.402 * dv
                g = yy - 0.344136 * du - 0.714136 * dv
                b = yy + 1.772 * du
            else:
                yy = 1.164383 * (yy - 16.0)
                r = yy + 1.596027 * dv
                g = yy - 0.391762 * du - 0.812968 * dv
                b = yy + 2.017232 * du
            out[oy, ox, 0] = np.uint8(min(255.0, max(0.0, r + 0.5)))
            out[oy, ox, 1] = np.uint8(min(255.0, max(0.0, g + 0.5)))
            out[oy, ox, 2] = np.uint8(min(255.0, max(0.0, b + 0.5)))


@njit(nogil=True, cache=True)
def frame_statistics_and_small(
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    thumb: np.ndarray,
    hist: np.ndarray,
    previous_thumb: np.ndarray,
    previous_hist: np.ndarray,
    sharpness_step: int,
    small: np.ndarray,
    full_range: bool,
) -> tuple[float, float, float, float]:
    """`frame_statistics` and `small_rgb` in one call (one GIL hand-over a frame)."""
    small_rgb(y, u, v, small, full_range)
    return frame_statistics(y, u, v, thumb, hist, previous_thumb, previous_hist, sharpness_step)

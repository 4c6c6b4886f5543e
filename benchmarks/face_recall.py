"""Recall of the face detectors that decide what gets pixelated, and of the check after it.

    .venv/bin/python benchmarks/face_recall.py [--seed 0] [--quick]

Faces of known position are rendered into keyframe-sized frames (432x768, portrait, the
keyframes stage's long side of 768): three faces, each also mirrored, cut with some
context (hair, neck) from photographs whose face boxes were marked by hand --
scikit-image's `astronaut` (frontal), `camera` (three-quarter profile, the demo's
cameraman) and the shared `grace_hopper.jpg` (frontal, glasses; left out when
../shared/data is absent). Each is pasted with a feathered edge onto face-free backgrounds
(scikit-image photographs and textures) at a face width of 16-200 px, turned by -30 to
+30 degrees, sharp or blurred (Gaussian, sigma 4 % of the face width, at least 1 px).

A face counts as found when a detection overlaps its box by IoU >= 0.3 (one detection per
face). False boxes: detections on 32 face-free images (16 photographs and textures, at
their own size and cropped to a keyframe), and detections matching no face in the rendered
frames. Also: the demo's cameraman shot (ep03, 360x640), and the speed per frame on one
core.

Then the check after pixelation: each rendered frame is released as the pixelation stage
does it (`release_keyframe` with CenterFace: mosaic, re-run, mosaic again until it finds
nothing), and each candidate check runs on the released copy: how many of the faces left
visible it flags, and how many frames whose faces were all mosaicked it flags all the same
(a false alarm of a blocking check), split by where the false box lies (on a mosaic or
elsewhere). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from skyscript_assets.models.base import WeightsMissing
from skyscript_assets.models.face_detection import (
    BlazeFaceDetector,
    CenterFaceDetector,
    FaceBox,
    HaarCascadeDetector,
    box_iou,
)

FRAME_W, FRAME_H = 432, 768
SIZES = (16, 24, 32, 48, 64, 96, 128, 200)
ANGLES = (-30, -15, 0, 15, 30)
SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


@dataclass(frozen=True)
class Source:
    name: str
    pose: str
    image: np.ndarray
    face: tuple[int, int, int, int]  # x0, y0, x1, y1, marked by hand


def sources() -> list[Source]:
    found = [
        Source("astronaut", "frontal", skimage.data.astronaut(), (178, 62, 275, 178)),
        Source("camera", "three-quarter", np.stack([skimage.data.camera()] * 3, axis=-1), (198, 118, 268, 198)),
    ]
    hopper = SHARED_IMAGES / "grace_hopper.jpg"
    if hopper.is_file():
        found.append(
            Source(
                "grace_hopper",
                "frontal",
                cv2.cvtColor(cv2.imread(str(hopper)), cv2.COLOR_BGR2RGB),
                (102, 55, 208, 172),
            )
        )
    return found


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[:, :, :3])


def _cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    resized = cv2.resize(
        image,
        (int(np.ceil(w * scale)), int(np.ceil(h * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    y0, x0 = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])


FACE_FREE = (
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "coins",
    "brick",
    "grass",
    "gravel",
    "page",
    "clock",
    "moon",
    "text",
    "colorwheel",
    "retina",
    "stereo_motorcycle",
)
BACKGROUNDS = (
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "brick",
    "grass",
    "gravel",
    "stereo_motorcycle",
)


def _photo(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()
    return _rgb(image[0] if isinstance(image, tuple) else image)


def face_free_images() -> list[tuple[str, np.ndarray]]:
    images = []
    for name in FACE_FREE:
        photo = _photo(name)
        images += [(name, photo), (f"{name} (keyframe)", _cover(photo, FRAME_W, FRAME_H))]
    return images


@dataclass
class Truth:
    box: tuple[float, float, float, float]
    source: str
    pose: str
    size: int
    angle: int
    blurred: bool


def _turned_face_box(box, matrix) -> tuple[float, float, float, float]:
    """Axis-aligned box of the ellipse inscribed in `box`, moved by the rotation `matrix`."""
    x0, y0, x1, y1 = box
    cx, cy = matrix[:, :2] @ ((x0 + x1) / 2, (y0 + y1) / 2) + matrix[:, 2]
    cos, sin = matrix[0, 0], matrix[0, 1]
    ax, ay = (x1 - x0) / 2, (y1 - y0) / 2
    hw, hh = np.hypot(ax * cos, ay * sin), np.hypot(ax * sin, ay * cos)
    return cx - hw, cy - hh, cx + hw, cy + hh


def paste_face(
    frame: np.ndarray,
    cell: tuple[int, int, int, int],
    source: Source,
    mirrored: bool,
    size: int,
    angle: int,
    rng: np.random.Generator,
) -> tuple[float, float, float, float]:
    """Paste `source`'s face (with half a face of context around it) into `cell` of `frame`
    at face width `size`, turned by `angle`; returns the face box in frame pixels."""
    image, (fx0, fy0, fx1, fy1) = source.image, source.face
    if mirrored:
        image = image[:, ::-1]
        fx0, fx1 = image.shape[1] - fx1, image.shape[1] - fx0
    fw, fh = fx1 - fx0, fy1 - fy0
    cx0, cy0 = max(0, fx0 - fw // 2), max(0, fy0 - fh // 2)
    cx1, cy1 = min(image.shape[1], fx1 + fw // 2), min(image.shape[0], fy1 + fh // 2)
    crop = image[cy0:cy1, cx0:cx1]
    scale = size / fw
    crop = cv2.resize(
        crop,
        (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
    )
    face = ((fx0 - cx0) * scale, (fy0 - cy0) * scale, (fx1 - cx0) * scale, (fy1 - cy0) * scale)
    # feathered alpha: the crop's edges fade out over an eighth of its shorter side
    h, w = crop.shape[:2]
    feather = max(1, min(h, w) // 8)
    alpha = np.zeros((h, w), np.float32)
    alpha[feather : h - feather, feather : w - feather] = 1.0
    alpha = cv2.GaussianBlur(alpha, (0, 0), feather / 2 + 0.5)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    out_w, out_h = int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos))
    matrix[0, 2] += out_w / 2 - w / 2
    matrix[1, 2] += out_h / 2 - h / 2
    crop = cv2.warpAffine(crop, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(alpha, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR)
    face = _turned_face_box(face, matrix)
    # place the face's centre at a random point of the cell that keeps the face inside the cell
    x0, y0, x1, y1 = cell
    fcx, fcy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    half_w, half_h = (face[2] - face[0]) / 2, (face[3] - face[1]) / 2
    tx = rng.uniform(x0 + half_w + 1, max(x0 + half_w + 1, x1 - half_w - 1))
    ty = rng.uniform(y0 + half_h + 1, max(y0 + half_h + 1, y1 - half_h - 1))
    ox, oy = int(round(tx - fcx)), int(round(ty - fcy))
    # paste, clipped to the cell
    px0, py0 = max(x0, ox), max(y0, oy)
    px1, py1 = min(x1, ox + out_w), min(y1, oy + out_h)
    if px1 > px0 and py1 > py0:
        a = alpha[py0 - oy : py1 - oy, px0 - ox : px1 - ox, None]
        region = frame[py0:py1, px0:px1].astype(np.float32)
        frame[py0:py1, px0:px1] = (a * crop[py0 - oy : py1 - oy, px0 - ox : px1 - ox] + (1 - a) * region).astype(
            np.uint8
        )
    return face[0] + ox, face[1] + oy, face[2] + ox, face[3] + oy


def _cells(count: int) -> list[tuple[int, int, int, int]]:
    cols, rows = {1: (1, 1), 2: (1, 2), 6: (2, 3)}[count]
    cw, ch = FRAME_W // cols, FRAME_H // rows
    return [(c * cw, r * ch, (c + 1) * cw, (r + 1) * ch) for r in range(rows) for c in range(cols)]


def faces_per_frame(size: int) -> int:
    return 6 if size <= 64 else 2 if size <= 128 else 1


def rendered_frames(seed: int, sizes=SIZES, angles=ANGLES) -> list[tuple[np.ndarray, list[Truth]]]:
    """Every face (source x mirrored) at every size, angle and blur, packed into frames."""
    rng = np.random.default_rng(seed)
    backgrounds = [_cover(_photo(name), FRAME_W, FRAME_H) for name in BACKGROUNDS]
    faces = [(source, mirrored) for source in sources() for mirrored in (False, True)]
    frames = []
    for size in sizes:
        for angle in angles:
            for blurred in (False, True):
                per_frame = faces_per_frame(size)
                for start in range(0, len(faces), per_frame):
                    frame = backgrounds[len(frames) % len(backgrounds)].copy()
                    truths = []
                    for cell, (source, mirrored) in zip(_cells(per_frame), faces[start : start + per_frame]):
                        box = paste_face(frame, cell, source, mirrored, size, angle, rng)
                        truths.append(Truth(box, source.name, source.pose, size, angle, blurred))
                    if blurred:
                        sigma = max(1.0, 0.04 * size)
                        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
                    frames.append((frame, truths))
    return frames


def match(truths: list[Truth], found: list[FaceBox], min_iou: float = 0.3) -> tuple[list[bool], list[FaceBox]]:
    """Which faces were found (greedy one-to-one by IoU), and the detections that matched none."""
    pairs = sorted(
        ((box_iou(FaceBox(*t.box, 1.0), f), i, j) for i, t in enumerate(truths) for j, f in enumerate(found)),
        reverse=True,
    )
    hit, used = [False] * len(truths), set()
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if not hit[i] and j not in used:
            hit[i], used = True, used | {j}
    return hit, [f for j, f in enumerate(found) if j not in used]


def demo_camera_frame() -> np.ndarray:
    from skyscript_assets.demo.demo_drama import DEMO_SIZE
    from skyscript_assets.demo.synthetic import ShotSpec, _shot_frames

    width, height = DEMO_SIZE
    return _shot_frames(ShotSpec(skimage.data.camera(), 1.0, "static"), 1, width, height)[0]


def privacy_haar() -> HaarCascadeDetector:
    """The cascades as pixelation and its check run them today."""
    try:
        from skyscript_assets.stages.refinement.pixelation import privacy_face_detector
    except ImportError:  # the stage moved: its settings as of 2026-12
        return HaarCascadeDetector.load(profiles=True, min_neighbors=3, scale_factor=1.1, work_height=480)
    return HaarCascadeDetector(privacy_face_detector())


HAAR = "Haar frontal+profile (pixelation and its check today)"
BLAZE = "BlazeFace short+full range, tiles, ±30° views (min score 0.6)"
BLAZE_PRECISE = "BlazeFace, as above, min score 0.7"
CENTER = "CenterFace, 1x+2x, ±30° views (min score 0.3)"
CENTER_PRECISE = "CenterFace, as above, min score 0.5"


def detectors(quick: bool) -> dict[str, object]:
    made: dict[str, object] = {HAAR: privacy_haar()}
    try:
        made[BLAZE] = BlazeFaceDetector.load()
        made[BLAZE_PRECISE] = BlazeFaceDetector.load(min_score=0.7)
        if not quick:
            made["BlazeFace, whole frame only, upright"] = BlazeFaceDetector.load(angles=(0.0,), tile_sides=())
    except WeightsMissing as err:
        print(f"BlazeFace left out: {err}\n")
    made[CENTER] = CenterFaceDetector.load(threads=1)
    made[CENTER_PRECISE] = CenterFaceDetector.load(threads=1, min_score=0.5)
    if not quick:
        made["CenterFace, 1x upright only"] = CenterFaceDetector.load(threads=1, scales=(1.0,), angles=())
    return made


class _ListDetector:
    """The stage's calling convention (`detect(images) -> per image, faces with .box`)."""

    def __init__(self, detector) -> None:
        self.detector = detector

    def detect(self, images):
        return self.detector.detect_all(images)


def covered(box, mosaicked: np.ndarray, share: float = 0.8) -> bool:
    """Whether `share` of the face box lies under the mosaic (pixels the release changed)."""
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    region = mosaicked[y0:y1, x0:x1]
    return region.size > 0 and region.mean() >= share


def check_after_pixelation(frames, pixelate, checks: dict[str, object]) -> list[tuple]:
    """Release each frame as the stage does (mosaic what `pixelate` finds, re-run it until it
    finds nothing), then run each candidate check on the released copy. Returns per check:
    faces left visible, of them flagged, and among the frames whose every face was mosaicked
    those flagged all the same: by a box on a mosaic (at least half of it mosaicked), and by
    a box elsewhere."""
    from skyscript_assets.stages.refinement.pixelation import release_keyframe

    released = []
    for frame, truths in frames:
        copy, _ = release_keyframe(_ListDetector(pixelate), frame)
        changed = np.any(copy != frame, axis=-1)
        left = [t for t in truths if not covered(t.box, changed)]
        released.append((copy, left, changed))
    left_total = sum(len(left) for _, left, _ in released)
    clean = sum(1 for _, left, _ in released if not left)
    rows = []
    for name, check in checks.items():
        flagged = on_mosaic = elsewhere = 0
        for copy, left, changed in released:
            hit, unmatched = match(left, check.detect(copy))
            flagged += sum(hit)
            if not left and unmatched:
                mosaic = any(covered(face.box, changed, 0.5) for face in unmatched)
                on_mosaic += mosaic
                elsewhere += any(not covered(face.box, changed, 0.5) for face in unmatched)
        rows.append((name, left_total, flagged, on_mosaic, elsewhere, clean))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer sizes and angles, no single-view rows")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one core per detector, as one worker process would have
    sizes, angles = ((16, 32, 64, 128), (-30, 0, 30)) if args.quick else (SIZES, ANGLES)
    frames = rendered_frames(args.seed, sizes, angles)
    face_free = face_free_images()
    demo = demo_camera_frame()
    demo_face = (87, 97, 187, 226)  # the cameraman in the demo's 360x640 frame, marked by hand
    truths = [t for _, ts in frames for t in ts]
    print(
        f"{len(truths)} faces in {len(frames)} rendered {FRAME_W}x{FRAME_H} frames; "
        f"{len(face_free)} face-free images; {platform.machine()}, one core per detector\n"
    )

    made = detectors(args.quick)
    rows = []
    for name, detector in made.items():
        detector.detect(frames[0][0])  # warm-up
        hits, extra, start = [], 0, time.perf_counter()
        for frame, frame_truths in frames:
            hit, unmatched = match(frame_truths, detector.detect(frame))
            hits += hit
            extra += len(unmatched)
        ms = (time.perf_counter() - start) * 1000 / len(frames)
        on_free = [len(detector.detect(image)) for _, image in face_free]
        demo_hit = match([Truth(demo_face, "camera", "three-quarter", 0, 0, False)], detector.detect(demo))[0][0]
        rows.append((name, hits, extra, sum(on_free), sum(map(bool, on_free)), demo_hit, ms))

    def recall(hits, keep) -> str:
        chosen = [h for h, t in zip(hits, truths) if keep(t)]
        return f"{100 * sum(chosen) / len(chosen):.0f}" if chosen else "-"

    print(
        "| detector | all | " + " | ".join(f"{s} px" for s in sizes) + " | upright | ±30° | blurred | 3/4 profile "
        "| demo cameraman | false boxes on face-free images (images with any) | unmatched boxes in renders "
        "| ms/frame |"
    )
    print("|---" * (len(sizes) + 10) + "|")
    for name, hits, extra, false_boxes, images_with_false, demo_hit, ms in rows:
        cells = [recall(hits, lambda t: True)] + [recall(hits, lambda t, s=s: t.size == s) for s in sizes]
        cells += [
            recall(hits, lambda t: t.angle == 0),
            recall(hits, lambda t: abs(t.angle) == 30),
            recall(hits, lambda t: t.blurred),
            recall(hits, lambda t: t.pose == "three-quarter"),
        ]
        print(
            f"| {name} | " + " | ".join(cells) + f" | {'found' if demo_hit else 'missed'} | "
            f"{false_boxes} ({images_with_false} of {len(face_free)}) | {extra} | {ms:.0f} |"
        )
    print("\nRecall in % of the faces of each column; sizes are face widths in a 432x768 frame.\n")

    checks = {name: made[name] for name in (HAAR, BLAZE, BLAZE_PRECISE, CENTER) if name in made}
    print(f"After pixelation with {CENTER} (the stage's release_keyframe: mosaic, re-run until nothing is found):\n")
    print(
        "| check | faces left visible | of them flagged | frames with every face mosaicked, flagged for a box "
        "on a mosaic | ... for a box elsewhere |"
    )
    print("|---|---|---|---|---|")
    for name, left, flagged, on_mosaic, elsewhere, clean in check_after_pixelation(frames, made[CENTER], checks):
        print(
            f"| {name}{' (the same detector)' if name == CENTER else ''} | {left} of {len(truths)} | {flagged} "
            f"| {on_mosaic} of {clean} | {elsewhere} of {clean} |"
        )


if __name__ == "__main__":
    main()

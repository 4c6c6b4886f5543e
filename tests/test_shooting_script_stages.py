"""Stage functions behind the shooting scripts: camera movement, highlight score, 3D layout."""

import cv2
import numpy as np
import pytest
import skimage.data

from skyscript_assets.stages.camera_motion import estimate_camera_motion
from skyscript_assets.stages.highlight import ShotSignals, highlight_scores, plot_highlight_curve
from skyscript_assets.stages.layout import (
    BODY_HEIGHT_CM, CAMERA_HEIGHT_CM, back_project, camera_intrinsics, distance_from_size, occlusion_conflicts,
    place_character, project, projection_matrix,
)

PHOTO = cv2.resize(skimage.data.astronaut(), (1024, 1024))


def _camera_path(kind: str, n: int = 24) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    frames = []
    for i in range(n):
        x, y, scale = 300, 300, 1.0
        if kind == "pan":
            x = 100 + 6 * i
        elif kind == "tilt":
            y = 100 + 6 * i
        elif kind == "zoom":
            scale = 1 + 0.02 * i
        elif kind == "handheld":
            x, y = 300 + rng.integers(-6, 7), 300 + rng.integers(-6, 7)
        w, h = int(320 / scale), int(180 / scale)
        cx, cy = x + 160, y + 90
        frames.append(cv2.resize(PHOTO[cy - h // 2:cy + h // 2, cx - w // 2:cx + w // 2], (320, 180)))
    return frames


@pytest.mark.parametrize("kind", ["static", "pan", "tilt", "zoom", "handheld"])
def test_camera_movement_is_recognised(kind):
    motion = estimate_camera_motion(_camera_path(kind), fps=12)
    assert motion.movement == kind, motion
    assert motion.pairs == 23


def test_camera_motion_signs():
    assert estimate_camera_motion(_camera_path("pan"), 12).pan_rate > 0  # camera moves right
    assert estimate_camera_motion(_camera_path("zoom"), 12).zoom_rate > 0  # pushes in
    assert estimate_camera_motion(list(reversed(_camera_path("zoom"))), 12).zoom_rate < 0


def test_flat_frames_give_static_without_estimates():
    frames = [np.full((90, 160), 128, np.uint8)] * 5
    motion = estimate_camera_motion(frames, 12)
    assert motion.movement == "static" and motion.pairs == 0


def test_highlight_follows_arousal_and_is_normalised():
    calm, tense = (5.0, 2.0, 5.0), (2.0, 9.0, 7.0)
    shots = [ShotSignals(2.0, [calm])] * 4 + [ShotSignals(2.0, [tense])] + [ShotSignals(2.0, [calm])] * 4
    scores = highlight_scores(shots)
    assert len(scores) == 9 and min(scores) == 0.0 and max(scores) == 1.0
    assert scores.index(1.0) == 4
    assert scores[3] > scores[1] and scores[5] > scores[7]  # smoothing builds up to and down from the peak


def test_highlight_falls_back_to_loudness_and_pace_without_vad():
    shots = [ShotSignals(3.0, [], -30.0), ShotSignals(0.5, [], -8.0), ShotSignals(3.0, [], -30.0)]
    scores = highlight_scores(shots)
    assert scores[1] == 1.0 and scores[0] == scores[2] == 0.0
    assert highlight_scores([ShotSignals(1.0, [])] * 3) == [0.5, 0.5, 0.5]
    png = plot_highlight_curve(scores)
    assert png.startswith(b"\x89PNG") and cv2.imdecode(np.frombuffer(png, np.uint8), 1).shape == (200, 640, 3)


def test_back_projection_and_projection_round_trip():
    k = camera_intrinsics(1280, 720, 60)
    point = back_project(900, 200, 350.0, k)
    pixel = project(projection_matrix(k), point)[0]
    assert pixel == pytest.approx([900, 200], abs=1e-6)
    assert project(projection_matrix(k), np.array([0.0, 100.0, -50.0]))[0] == pytest.approx([np.nan, np.nan], nan_ok=True)


def test_standing_person_is_placed_at_head_height_and_prior_distance():
    k = camera_intrinsics(1280, 720, 60)
    body_px = 400.0
    distance = distance_from_size(body_px, BODY_HEIGHT_CM, k)
    top = 720 / 2 - 0.94 * body_px * (BODY_HEIGHT_CM - CAMERA_HEIGHT_CM) / BODY_HEIGHT_CM  # roughly centred
    placed = place_character("char-1", (600, top, 680, top + body_px), k, is_face=False)
    assert placed.location_cm[2] == pytest.approx(distance, rel=1e-3)
    assert 120 < placed.location_cm[1] < 200  # head near eye level


def test_virtual_view_turns_the_scene():
    k = camera_intrinsics(1280, 720, 60)
    ahead = np.array([[0.0, CAMERA_HEIGHT_CM, 500.0]])
    assert project(projection_matrix(k), ahead)[0][0] == pytest.approx(640)
    turned_right = project(projection_matrix(k, yaw_deg=20), ahead)[0][0]
    assert turned_right < 640  # the camera turns right, so the point moves left in the image


def test_occlusion_conflicts_flag_an_impossible_depth_order():
    near = place_character("a", (100, 100, 300, 600), camera_intrinsics(1280, 720), is_face=False)
    far = place_character("b", (200, 250, 260, 400), camera_intrinsics(1280, 720), is_face=False)
    assert occlusion_conflicts([near, far]) == []
    wrong = near.__class__("a", (near.location_cm[0], near.location_cm[1], far.location_cm[2] + 100), near.box)
    assert occlusion_conflicts([wrong, far]) == [("a", "b")]

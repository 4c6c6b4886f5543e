"""Camera angle, events, reconciled shot size and the scene's registered layout, on synthetic
images and geometry whose answers are known."""

from collections import Counter

import cv2
import numpy as np
import pytest
import skimage.data

from skyscript_assets.schema import CharacterInShot, ShotScript
from skyscript_assets.stages.scripts.camera_angle import estimate_camera_angle, shot_camera_angle
from skyscript_assets.stages.scripts.events import group_events
from skyscript_assets.stages.scripts.layout import (
    CAMERA_HEIGHT_CM,
    FACE_HEIGHT_CM,
    CameraPose,
    camera_intrinsics,
    distance_from_size,
    metric_distances,
    orbit_view,
    place_frame,
    project,
    register_shots,
    render_view,
)
from skyscript_assets.stages.scripts.shooting_scripts import (
    KeyframeEvidence,
    ShotEvidence,
    assemble_episode,
    scene_view_png,
)
from skyscript_assets.stages.scripts.shot_size import measured_shot_size, reconcile_shot_size
from skyscript_assets.stages.scripts.table1 import shooting_script_text

SIZE = (360, 640)  # width, height: vertical, as the demo


def _facade(height: int, width: int) -> np.ndarray:
    """A wall seen square-on: pilasters (world verticals) and windows (world horizontals)."""
    rng = np.random.default_rng(0)
    image = np.full((height, width, 3), 200, np.uint8)
    for x in range(0, width, 90):
        cv2.rectangle(image, (x + 20, 0), (x + 32, height), (60, 50, 40), -1)
    for y in range(0, height, 120):
        for x in range(0, width, 90):
            cv2.rectangle(
                image, (x + 45, y + 30), (x + 80, y + 95), tuple(int(c) for c in rng.integers(0, 120, 3)), -1
            )
    return image


def _rotated_camera_view(pitch_deg: float = 0.0, roll_deg: float = 0.0, size=SIZE) -> np.ndarray:
    """What a camera pitched down by `pitch_deg` and rolled by `roll_deg` sees of the facade that a
    level camera sees square-on: the homography K R K^-1 of a pure camera rotation."""
    width, height = size
    k = camera_intrinsics(width, height)
    wall = _facade(3 * height, 3 * width)
    k_wall = k.copy()
    k_wall[0, 2], k_wall[1, 2] = wall.shape[1] / 2, wall.shape[0] / 2
    a, g = np.radians(pitch_deg), np.radians(roll_deg)
    pitch = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    roll = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])
    return cv2.warpPerspective(wall, k @ roll @ pitch @ np.linalg.inv(k_wall), (width, height))


# --- camera angle -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pitch, roll, angle",
    [
        (0, 0, "eye_level"),
        (5, 0, "eye_level"),
        (-5, 0, "eye_level"),
        (20, 0, "high"),
        (-20, 0, "low"),
        (65, 0, "overhead"),
        (0, 12, "dutch"),
        (0, -15, "dutch"),
        (15, 10, "dutch"),
        (0, 4, "eye_level"),
    ],
)
def test_camera_angle_of_a_rotated_camera(pitch, roll, angle):
    found = estimate_camera_angle(_rotated_camera_view(pitch, roll))
    assert found.angle == angle, found
    assert found.roll_deg == pytest.approx(roll, abs=1.0)
    assert found.pitch_deg == pytest.approx(pitch, abs=2.5)


@pytest.mark.parametrize("degrees", [12, -12, 20])
def test_dutch_angle_of_a_rotated_photograph(degrees):
    """A brick wall photograph turned by a known angle (centre crop: no black corners)."""
    bricks = np.stack([skimage.data.brick()] * 3, axis=-1)
    h, w = bricks.shape[:2]
    turned = cv2.warpAffine(bricks, cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0), (w, h))
    found = estimate_camera_angle(turned[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4])
    assert found.angle == "dutch"
    assert found.roll_deg == pytest.approx(degrees, abs=2.5)


@pytest.mark.parametrize(
    "image",
    [
        np.full((640, 360, 3), 90, np.uint8),
        np.random.default_rng(0).integers(0, 256, (640, 360, 3), dtype=np.uint8),
        np.stack([skimage.data.gravel()] * 3, axis=-1),
    ],
)
def test_no_lines_no_angle(image):
    found = estimate_camera_angle(image)
    assert found.angle is None and found.pitch_deg is None


def test_shot_angle_is_the_keyframes_majority():
    assert shot_camera_angle(["high", None, "eye_level", "high"]) == "high"
    assert shot_camera_angle([None, None]) is None


# --- shot size --------------------------------------------------------------------------------


def test_measured_size_wins_only_beyond_one_step():
    assert measured_shot_size([200.0, 90.0], [], 640) == "close_up"  # 200 / 640 = 0.31
    assert measured_shot_size([], [500.0], 640) == "full"  # a body 78 % of the frame, no face
    assert measured_shot_size([], [], 640) is None
    kept = reconcile_shot_size("medium", "close_up")
    assert (kept.size, kept.disagreed) == ("medium", False)
    overruled = reconcile_shot_size("wide", "close_up")
    assert (overruled.size, overruled.disagreed) == ("close_up", True)
    assert reconcile_shot_size(None, "full").size == "full"
    assert reconcile_shot_size("medium", None).size == "medium"


# --- events -----------------------------------------------------------------------------------


def _shot(start, end, *people, action=None):
    return ShotScript(
        shot_number=1,
        start_s=start,
        end_s=end,
        action=action,
        characters=[CharacterInShot(character_id=cid, name=name, line=line) for cid, name, line in people],
    )


def test_events_follow_cast_action_and_gaps():
    emma, leo, kai = ("c1", "Emma", None), ("c2", "Leo", None), ("c3", "Kai", None)
    shots = [
        _shot(0, 2, ("c1", "Emma", "You came back."), action="pours coffee"),
        _shot(2, 4, ("c2", "Leo", "I had to."), action="sits down"),  # answers her: same event
        _shot(4, 6, emma, leo, action="pours coffee"),
        _shot(6, 8, kai, action="opens the door"),  # nobody of the event: a new one
        _shot(8, 10, kai, action="opens the door slowly"),
        _shot(10, 12, kai, action="reads a letter"),  # another action, no dialogue: a new one
        _shot(20, 22, kai, action="reads a letter"),  # a long gap
    ]
    events = group_events(shots)
    assert [e.shot_indices for e in events] == [[0, 1, 2], [3, 4], [5], [6]]
    assert [e.number for e in events] == [1, 2, 3, 4]
    assert events[0].text == 'Emma, Leo: pours coffee; sits down — Emma says "You came back."'
    assert events[1].text == "Kai: opens the door; opens the door slowly"
    assert group_events([_shot(0, 1)])[0].text is None  # nothing said or done: no text made up
    assert group_events([_shot(0, 1, ("c1", "Emma", "Hi."))])[0].text == 'Emma says "Hi."'
    assert group_events([_shot(0, 1, emma, leo)])[0].text == "Emma, Leo"


# --- layout: depth, occlusion, registration, new views ----------------------------------------


def test_relative_depth_is_scaled_against_the_size_prior():
    assert metric_distances([300.0, 300.0], [None, None]) == [300.0, 300.0]
    near, far = metric_distances([300.0, 300.0], [2.0, 1.0])  # same face size, depth says twice as near
    assert far == pytest.approx(2 * near) and near * far == pytest.approx(300.0**2)
    assert metric_distances([300.0, 200.0], [1.0, None]) == pytest.approx([300.0, 200.0])


def test_a_depth_order_contradicting_the_image_is_repaired():
    k = camera_intrinsics(*SIZE)
    big, small = (100, 200, 220, 320), (180, 230, 240, 290)  # overlapping, one drawn twice as tall
    consistent = place_frame({"a": big, "b": small}, {"a": 2.0, "b": 1.0}, k)
    assert consistent.conflicts == [] and consistent.placed[0].location_cm[2] < consistent.placed[1].location_cm[2]
    contradicted = place_frame({"a": big, "b": small}, {"a": 1.0, "b": 4.0}, k)  # depth puts the big face behind
    assert contradicted.conflicts == [("a", "b")] and contradicted.unresolved == []
    assert contradicted.placed[0].location_cm[2] == pytest.approx(distance_from_size(120, FACE_HEIGHT_CM, k), abs=0.1)


SCENE = {
    "a": np.array([-40.0, 160.0, 400.0]),
    "b": np.array([60.0, 165.0, 520.0]),
    "c": np.array([10.0, 150.0, 700.0]),
}


def _face_boxes(pose: CameraPose, ids, k) -> dict:
    """The face boxes a camera at `pose` sees of the SCENE's characters."""
    matrix = pose.matrix(k)
    boxes = {}
    for cid in ids:
        u, v = project(matrix, SCENE[cid])[0]
        half = k[1, 1] * FACE_HEIGHT_CM / (matrix[2] @ np.append(SCENE[cid], 1.0)) / 2
        boxes[cid] = (u - half, v - half, u + half, v + half)
    return boxes


def test_shots_are_registered_to_the_scene_through_shared_characters():
    k = camera_intrinsics(*SIZE)
    first, turned = CameraPose(), CameraPose(12.0, (-60.0, CAMERA_HEIGHT_CM, 40.0))
    again = CameraPose(12.0, (-100.0, CAMERA_HEIGHT_CM, 10.0))  # the turned set-up again, moved: sees only c
    frames = [
        place_frame(_face_boxes(first, "ab", k), {}, k),
        None,
        place_frame(_face_boxes(turned, "abc", k), {}, k),
        place_frame(_face_boxes(again, "c", k), {}, k),
        place_frame({"z": (100, 100, 160, 160)}, {}, k),
    ]
    poses = register_shots(frames)
    assert poses[0] == CameraPose() and poses[1] is None
    assert poses[2].yaw_deg == pytest.approx(12.0, abs=0.2)
    assert poses[2].position_cm == pytest.approx((-60.0, CAMERA_HEIGHT_CM, 40.0), abs=1.5)
    # one shared character: translation only, the yaw of the shot that placed it
    assert poses[3].yaw_deg == pytest.approx(12.0, abs=0.2)
    assert poses[3].position_cm == pytest.approx(again.position_cm, abs=2.0)
    assert not poses[4].registered  # shares nobody: cannot be placed in the scene
    for frame, pose in zip(frames[:4], poses[:4]):
        for placed in frame.placed if frame else []:
            assert pose.to_scene(placed.location_cm) == pytest.approx(SCENE[placed.character_id], abs=2.0)
    # the registered shot's matrix projects the scene's characters onto its face centres
    centres = {cid: ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for cid, b in _face_boxes(turned, "abc", k).items()}
    pixels, image = render_view({cid: tuple(SCENE[cid]) for cid in "abc"}, poses[2].matrix(k))
    assert image is None
    for cid in "abc":
        assert pixels[cid] == pytest.approx(centres[cid], abs=1.0)


def test_a_virtual_view_draws_the_characters():
    positions = {cid: tuple(p) for cid, p in SCENE.items()}
    pixels, image = orbit_view(positions, 60.0, (320, 180), {"a": "Emma"})
    assert image.shape == (180, 320, 3) and (image > 32).any()
    assert all(0 <= u < 320 and 0 <= v < 180 for u, v in pixels.values())
    behind = render_view(positions, CameraPose(180.0).matrix(camera_intrinsics(320, 180)))[0]
    assert set(behind.values()) == {None}  # turned round: everybody is behind the camera


# --- assembled: a scene of two shots ----------------------------------------------------------


def test_assembled_scene_has_angles_events_sizes_and_a_registered_layout():
    k = camera_intrinsics(*SIZE)
    turned = CameraPose(10.0, (-40.0, CAMERA_HEIGHT_CM, 30.0))

    def keyframe(item, pose, pitch, shot_type, ids, lines):
        boxes = _face_boxes(pose, ids, k)
        annotation = {
            "scene": {"name": "office"},
            "scene_description": "An office by day",
            "people": [{"shot_type": shot_type, "actions": "argues"} for _ in ids],
        }
        refined = [{"face_box": list(boxes[cid]), "line": lines.get(cid)} for cid in ids]
        return KeyframeEvidence(item, _rotated_camera_view(pitch), annotation, refined)

    shots = [
        ShotEvidence(0, 0.0, 2.0, [keyframe("ep/s0", CameraPose(), 20, "medium", "ab", {"a": "Sit down."})]),
        ShotEvidence(1, 2.0, 4.0, [keyframe("ep/s1", turned, 0, "full", "abc", {"b": "No."})]),
    ]
    identity_of = {
        ("ep/s0", 0): ("a", "Ana"),
        ("ep/s0", 1): ("b", "Ben"),
        ("ep/s1", 0): ("a", "Ana"),
        ("ep/s1", 1): ("b", "Ben"),
        ("ep/s1", 2): ("c", "Cid"),
    }
    figures = Counter()
    [scene] = assemble_episode("d", "ep", shots, identity_of, figures)
    first, second = scene.shots
    assert (first.camera_angle, second.camera_angle) == ("high", "eye_level")
    assert (first.event_number, second.event_number) == (1, 1)
    assert first.event == 'Ana, Ben, Cid: argues — Ana says "Sit down."' == second.event
    # faces of 13-18 px in 640 measure "wide": "medium" is two steps off (overruled), "full" one (kept)
    assert (first.shot_size, second.shot_size) == ("wide", "full")
    assert second.layout_registered and np.array(second.projection_matrix).shape == (3, 4)
    for shot in scene.shots:
        for character in shot.characters:
            assert character.location_cm == pytest.approx(tuple(SCENE[character.character_id]), abs=3.0)
    assert figures == Counter(
        shots=2,
        shots_with_camera_angle=2,
        shot_size_measured=2,
        shot_size_disagreements=1,
        events=1,
        shots_registered=2,
    )
    text = shooting_script_text(scene)
    assert "Camera Angle: High" in text and "Camera Angle: Eye Level" in text
    assert "Main Subject — Event 1: Ana, Ben, Cid: argues" in text
    png = scene_view_png(scene)
    assert png.startswith(b"\x89PNG") and cv2.imdecode(np.frombuffer(png, np.uint8), 1).shape == (180, 320, 3)


def test_a_shot_far_from_the_mllm_size_is_counted_as_a_disagreement():
    close = KeyframeEvidence(
        "k",
        np.zeros((640, 360, 3), np.uint8),
        {"people": [{"shot_type": "wide"}]},
        [{"face_box": [100, 100, 300, 330]}],
    )
    figures = Counter()
    [scene] = assemble_episode("d", "ep", [ShotEvidence(0, 0.0, 1.0, [close])], {}, figures)
    assert scene.shots[0].shot_size == "close_up" and figures["shot_size_disagreements"] == 1
    assert scene.shots[0].camera_angle is None and figures["shots_with_camera_angle"] == 0

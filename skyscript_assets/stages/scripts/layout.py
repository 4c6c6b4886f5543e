"""World layout: characters' 2D positions lifted to 3D, and 3D positions rendered back.

A pinhole camera with intrinsics from an assumed horizontal field of view. A character's
distance comes from its depth (Depth Anything, metric after scaling) where available,
else from apparent size with human priors (a face is ~23 cm tall, a body ~170 cm). The
scene frame is the first shot's camera: x right, y up, z forward, centimetres, with the
floor at y = 0 and the camera at eye level, so a standing adult's head is near (x, 165, z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_HFOV_DEG = 60.0
FACE_HEIGHT_CM = 23.0
BODY_HEIGHT_CM = 170.0
CAMERA_HEIGHT_CM = 160.0  # eye level


def camera_intrinsics(width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> np.ndarray:
    focal = (width / 2) / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], float)


def distance_from_size(size_px: float, real_size_cm: float, intrinsics: np.ndarray) -> float:
    """Distance (cm) at which an object `real_size_cm` tall appears `size_px` tall."""
    return float(intrinsics[1, 1] * real_size_cm / max(size_px, 1e-6))


def back_project(u: float, v: float, distance_cm: float, intrinsics: np.ndarray) -> np.ndarray:
    """Pixel (u, v) at `distance_cm` along the optical axis -> scene point (x, y, z), y up."""
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    x = (u - cx) / fx * distance_cm
    y_down = (v - cy) / fy * distance_cm
    return np.array([x, CAMERA_HEIGHT_CM - y_down, distance_cm])


def projection_matrix(
    intrinsics: np.ndarray, yaw_deg: float = 0.0, position_cm=(0.0, CAMERA_HEIGHT_CM, 0.0)
) -> np.ndarray:
    """3x4 matrix mapping homogeneous scene points (y up) to homogeneous pixels for a camera at
    `position_cm` turned `yaw_deg` to the right."""
    yaw = np.radians(yaw_deg)
    # scene (y up) -> camera (y down), then the yaw about the vertical axis
    flip = np.diag([1.0, -1.0, 1.0])
    rotation = np.array([[np.cos(yaw), 0, -np.sin(yaw)], [0, 1, 0], [np.sin(yaw), 0, np.cos(yaw)]]) @ flip
    translation = -rotation @ np.asarray(position_cm, float)
    return intrinsics @ np.hstack([rotation, translation[:, None]])


def project(matrix: np.ndarray, points_cm: np.ndarray) -> np.ndarray:
    """Scene points (N, 3) -> pixels (N, 2); points behind the camera come back as NaN."""
    points = np.atleast_2d(points_cm)
    homogeneous = np.hstack([points, np.ones((len(points), 1))]) @ matrix.T
    with np.errstate(divide="ignore", invalid="ignore"):
        pixels = homogeneous[:, :2] / homogeneous[:, 2:3]
    pixels[homogeneous[:, 2] <= 0] = np.nan
    return pixels


@dataclass(frozen=True)
class PlacedCharacter:
    character_id: str
    location_cm: tuple[float, float, float]
    box: tuple[float, float, float, float]  # the box it was placed from, pixels


def place_character(
    character_id: str,
    box: tuple[float, float, float, float],
    intrinsics: np.ndarray,
    *,
    is_face: bool,
    depth_cm: float | None = None,
) -> PlacedCharacter:
    """Lift a face or body box to the scene; the box centre's top marks the head for bodies."""
    x0, y0, x1, y1 = box
    prior = FACE_HEIGHT_CM if is_face else BODY_HEIGHT_CM
    distance = depth_cm if depth_cm and depth_cm > 0 else distance_from_size(y1 - y0, prior, intrinsics)
    head_v = (y0 + y1) / 2 if is_face else y0 + 0.06 * (y1 - y0)
    point = back_project((x0 + x1) / 2, head_v, distance, intrinsics)
    return PlacedCharacter(character_id, tuple(round(float(c), 1) for c in point), box)


def occlusion_conflicts(placed: list[PlacedCharacter]) -> list[tuple[str, str]]:
    """Pairs whose boxes overlap but whose depth order contradicts it: the one drawn larger
    (nearer in the image) must not be placed farther away. Each pair is a layout to repair."""
    conflicts = []
    for i, a in enumerate(placed):
        for b in placed[i + 1 :]:
            if not _overlap(a.box, b.box):
                continue
            a_taller = (a.box[3] - a.box[1]) > (b.box[3] - b.box[1]) * 1.15
            b_taller = (b.box[3] - b.box[1]) > (a.box[3] - a.box[1]) * 1.15
            if (a_taller and a.location_cm[2] > b.location_cm[2]) or (
                b_taller and b.location_cm[2] > a.location_cm[2]
            ):
                conflicts.append((a.character_id, b.character_id))
    return conflicts


def _overlap(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


# --- one frame: depth in centimetres, occlusion order -------------------------------------


def metric_distances(prior_cm: list[float], inverse_depth: list[float | None]) -> list[float]:
    """Distances (cm) of the characters of one frame. Depth Anything's relative inverse depth
    r has an unknown scale per frame: distance = s / r, with s fitted against the size priors
    (median of prior * r, in log space, so one odd face does not move the rest). Characters
    without a depth keep their prior; with no depth at all the priors come back unchanged."""
    pairs = [(p, r) for p, r in zip(prior_cm, inverse_depth) if r is not None and r > 0 and p > 0]
    if not pairs:
        return list(prior_cm)
    scale = float(np.exp(np.median([np.log(p * r) for p, r in pairs])))
    return [scale / r if r is not None and r > 0 else p for p, r in zip(prior_cm, inverse_depth)]


@dataclass
class FrameLayout:
    """Characters of one keyframe in its camera's frame (the camera at (0, CAMERA_HEIGHT_CM, 0)
    looking along +z), and what the occlusion check found."""

    intrinsics: np.ndarray
    placed: list[PlacedCharacter]
    conflicts: list[tuple[str, str]]  # found with the depth-derived distances
    unresolved: list[tuple[str, str]]  # still there after the repair


def place_frame(
    face_boxes: dict[str, tuple[float, float, float, float]],
    inverse_depth: dict[str, float | None],
    intrinsics: np.ndarray,
) -> FrameLayout:
    """Place a frame's characters from their face boxes, at depth-derived distances where Depth
    Anything ran. A pair whose depth order contradicts what the image shows (occlusion_conflicts)
    is repaired by placing both at their size-prior distances, which follow the image by
    construction; a pair still in conflict is reported as unresolved."""
    ids = list(face_boxes)
    priors = [distance_from_size(face_boxes[i][3] - face_boxes[i][1], FACE_HEIGHT_CM, intrinsics) for i in ids]
    distances = dict(zip(ids, metric_distances(priors, [inverse_depth.get(i) for i in ids])))
    placed = [place_character(i, face_boxes[i], intrinsics, is_face=True, depth_cm=distances[i]) for i in ids]
    conflicts = occlusion_conflicts(placed)
    if conflicts:
        repair = {i for pair in conflicts for i in pair}
        placed = [
            place_character(i, face_boxes[i], intrinsics, is_face=True, depth_cm=None if i in repair else distances[i])
            for i in ids
        ]
    return FrameLayout(intrinsics, placed, conflicts, occlusion_conflicts(placed) if conflicts else [])


# --- a scene: shots registered to the first one's camera --------------------------------------


@dataclass(frozen=True)
class CameraPose:
    """A shot's camera in the scene frame: where it stands and how far it is turned right."""

    yaw_deg: float = 0.0
    position_cm: tuple[float, float, float] = (0.0, CAMERA_HEIGHT_CM, 0.0)
    registered: bool = True  # False: it shares no character with the scene so far, so assumed at the origin

    def to_scene(self, local_cm) -> np.ndarray:
        """A point in this camera's frame (as place_character returns it) -> the scene frame."""
        local = np.asarray(local_cm, float) - np.array([0.0, CAMERA_HEIGHT_CM, 0.0])
        return np.asarray(self.position_cm, float) + _yaw_rotation(self.yaw_deg).T @ local

    def matrix(self, intrinsics: np.ndarray) -> np.ndarray:
        return projection_matrix(intrinsics, self.yaw_deg, self.position_cm)


def register_shots(frames: list[FrameLayout | None]) -> list[CameraPose | None]:
    """Camera poses of a scene's shots (None for a shot with nobody placed). The first placed
    shot's camera is the scene frame. A later shot sharing characters with the shots before it
    is turned and moved so that the shared characters land where they were first placed: with
    two or more, yaw and translation on the floor plane (least squares); with one, translation
    only, keeping the yaw of the shot it was seen in (the same set-up again). A shot sharing
    nobody cannot be registered: it is assumed at the origin and marked as such."""
    poses: list[CameraPose | None] = []
    anchors: dict[str, tuple[np.ndarray, float]] = {}  # character -> (scene position, yaw of its shot)
    for frame in frames:
        if frame is None or not frame.placed:
            poses.append(None)
            continue
        local = {p.character_id: np.asarray(p.location_cm, float) for p in frame.placed}
        shared = [c for c in local if c in anchors]
        if not anchors:
            pose = CameraPose()
        elif not shared:
            pose = CameraPose(registered=False)
        elif len(shared) == 1:
            scene_point, yaw = anchors[shared[0]]
            offset = _yaw_rotation(yaw).T @ (local[shared[0]] - np.array([0.0, CAMERA_HEIGHT_CM, 0.0]))
            position = scene_point - offset
            pose = CameraPose(yaw, (float(position[0]), CAMERA_HEIGHT_CM, float(position[2])))
        else:
            pose = _fit_pose(np.array([local[c] for c in shared]), np.array([anchors[c][0] for c in shared]))
        poses.append(pose)
        if pose.registered:
            for character, point in local.items():
                anchors.setdefault(character, (pose.to_scene(point), pose.yaw_deg))
    return poses


def _fit_pose(local: np.ndarray, scene: np.ndarray) -> CameraPose:
    """Yaw and floor-plane position with scene ~ position + R(yaw)^T (local - camera), least squares
    (2-D Kabsch on x, z)."""
    a = local[:, [0, 2]]
    b = scene[:, [0, 2]]
    a_mean, b_mean = a.mean(axis=0), b.mean(axis=0)
    u, _, vt = np.linalg.svd((a - a_mean).T @ (b - b_mean))
    rotation = (u @ np.diag([1.0, np.sign(np.linalg.det(u @ vt))]) @ vt).T  # b - b_mean ~ rotation @ (a - a_mean)
    # R(yaw)^T restricted to (x, z) is [[cos, sin], [-sin, cos]]
    yaw = float(np.degrees(np.arctan2(rotation[0, 1], rotation[0, 0])))
    x, z = b_mean - rotation @ a_mean
    return CameraPose(round(yaw, 3), (float(x), CAMERA_HEIGHT_CM, float(z)))


def _yaw_rotation(yaw_deg: float) -> np.ndarray:
    yaw = np.radians(yaw_deg)
    return np.array([[np.cos(yaw), 0, -np.sin(yaw)], [0, 1, 0], [np.sin(yaw), 0, np.cos(yaw)]])


# --- a new view -------------------------------------------------------------------------------


def render_view(
    positions_cm: dict[str, tuple[float, float, float]],
    matrix: np.ndarray,
    size: tuple[int, int] | None = None,
    labels: dict[str, str] | None = None,
) -> tuple[dict[str, tuple[float, float] | None], np.ndarray | None]:
    """Project the scene's characters through a (virtual) camera's 3x4 matrix: pixel per
    character (None behind the camera). With `size` (width, height) also a small RGB sketch: a
    dot per character, larger when nearer, with its label."""
    ids = list(positions_cm)
    pixels = project(matrix, np.array([positions_cm[i] for i in ids], float)) if ids else np.zeros((0, 2))
    result = {i: None if np.isnan(p).any() else (float(p[0]), float(p[1])) for i, p in zip(ids, pixels)}
    if size is None:
        return result, None
    import cv2

    width, height = size
    image = np.full((height, width, 3), 32, np.uint8)
    for character in ids:
        pixel = result[character]
        if pixel is None:
            continue
        # the dot is as tall as a face there: the distance between the projected chin and crown
        head = np.asarray(positions_cm[character], float)
        ends = project(matrix, np.array([head + [0, FACE_HEIGHT_CM / 2, 0], head - [0, FACE_HEIGHT_CM / 2, 0]]))
        radius = int(np.clip(np.nan_to_num(np.linalg.norm(ends[0] - ends[1]) / 2, nan=2), 2, height // 4))
        centre = (int(round(pixel[0])), int(round(pixel[1])))
        cv2.circle(image, centre, radius, (230, 200, 60), -1)
        cv2.putText(
            image,
            (labels or {}).get(character, character),
            (centre[0] + radius + 2, centre[1]),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return result, image


def orbit_view(
    positions_cm: dict[str, tuple[float, float, float]],
    yaw_deg: float,
    size: tuple[int, int],
    labels: dict[str, str] | None = None,
    hfov_deg: float = DEFAULT_HFOV_DEG,
) -> tuple[dict[str, tuple[float, float] | None], np.ndarray | None]:
    """A virtual camera at eye level turned `yaw_deg` and stepped back so that it looks at the
    characters' centroid from at least 3 m away: the scene seen from a new angle."""
    if not positions_cm:
        return {}, None
    points = np.array(list(positions_cm.values()), float)
    centre = points.mean(axis=0)
    reach = float(np.max(np.linalg.norm(points[:, [0, 2]] - centre[[0, 2]], axis=1)))
    distance = max(300.0, 2.5 * reach)
    forward = np.array([np.sin(np.radians(yaw_deg)), 0.0, np.cos(np.radians(yaw_deg))])
    position = centre - distance * forward
    matrix = projection_matrix(
        camera_intrinsics(*size, hfov_deg), yaw_deg, (position[0], CAMERA_HEIGHT_CM, position[2])
    )
    return render_view(positions_cm, matrix, size, labels)

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


def projection_matrix(intrinsics: np.ndarray, yaw_deg: float = 0.0, position_cm=(0.0, CAMERA_HEIGHT_CM, 0.0)) -> np.ndarray:
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


def place_character(character_id: str, box: tuple[float, float, float, float], intrinsics: np.ndarray, *,
                    is_face: bool, depth_cm: float | None = None) -> PlacedCharacter:
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
        for b in placed[i + 1:]:
            if not _overlap(a.box, b.box):
                continue
            a_taller = (a.box[3] - a.box[1]) > (b.box[3] - b.box[1]) * 1.15
            b_taller = (b.box[3] - b.box[1]) > (a.box[3] - a.box[1]) * 1.15
            if (a_taller and a.location_cm[2] > b.location_cm[2]) or (b_taller and b.location_cm[2] > a.location_cm[2]):
                conflicts.append((a.character_id, b.character_id))
    return conflicts


def _overlap(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])

"""Rendered clips that are hard for a shot-boundary detector, with frame-exact ground truth.

Each clip is a few seconds of 640x360 24 fps H.264 made of "shots": a still photograph
filmed by a hand-held camera (a slow random walk of position and zoom, sensor grain),
cut together like an edit. On top of that, each clip has what makes it hard:

    flicker      VFX flicker and an explosion inside one shot (bright frames for ~0.7 s,
                 an expanding fireball for ~1 s; both return to the same picture), and a
                 quick real cutaway (A -> B -> A within 0.6 s) that must still count
    same_set     cuts between close framings of the same picture (wide -> medium, a small
                 change of angle): same colours, low contrast
    dark         a night scene: cuts between dark, grainy shots (luma ~20, little spread)
    joins        a long join of different sources: pillarboxed 4:3, letterboxed scope,
                 graded warm and cold, one source ending on a slow dim to near black
    cartoon      flat-colour animation: cuts between drawings of the same palette

Deterministic: the same seed gives the same frames (x264 runs on one thread).

    truth = render_clip("flicker", path)     # {"cut_frames": [...], "frames": N, ...}
    names = CLIPS                            # every clip's name
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import skimage.data

WIDTH, HEIGHT, FPS = 640, 360, 24


def _photo(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()
    return image if image.ndim == 3 else np.stack([image] * 3, axis=-1)


class _Camera:
    """A hand-held camera over a photograph: random walk of pan and zoom, grain."""

    def __init__(
        self,
        image: np.ndarray,
        rng: np.random.Generator,
        *,
        centre=(0.5, 0.5),
        zoom: float = 1.0,
        shake: float = 1.5,
        grain: float = 2.0,
        flip: bool = False,
    ):
        self.image = np.ascontiguousarray(image[:, ::-1] if flip else image)
        self.rng, self.zoom, self.shake, self.grain = rng, zoom, shake, grain
        self.cx, self.cy = centre
        self.dx = self.dy = 0.0

    def frame(self) -> np.ndarray:
        self.dx = 0.9 * self.dx + self.rng.normal(0, self.shake)
        self.dy = 0.9 * self.dy + self.rng.normal(0, self.shake)
        h, w = self.image.shape[:2]
        scale = max(WIDTH / w, HEIGHT / h) * self.zoom * 1.15  # room to move
        tx = WIDTH / 2 - scale * self.cx * w + self.dx
        ty = HEIGHT / 2 - scale * self.cy * h + self.dy
        matrix = np.float32([[scale, 0, tx], [0, scale, ty]])
        rgb = cv2.warpAffine(
            self.image, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        if self.grain:
            rgb = np.clip(rgb + self.rng.normal(0, self.grain, rgb.shape), 0, 255).astype(np.uint8)
        return rgb


def _grade(rgb: np.ndarray, gain=(1.0, 1.0, 1.0), lift: float = 0.0, gamma: float = 1.0) -> np.ndarray:
    x = rgb.astype(np.float32) / 255.0
    x = np.clip(x * np.float32(gain) + lift, 0, 1) ** gamma
    return (x * 255 + 0.5).astype(np.uint8)


def _boxed(rgb: np.ndarray, aspect: float) -> np.ndarray:
    """The picture fitted inside black bars (letterbox above 16:9, pillarbox below)."""
    out = np.zeros_like(rgb)
    if aspect > WIDTH / HEIGHT:
        h = int(round(WIDTH / aspect / 2)) * 2
        out[(HEIGHT - h) // 2 : (HEIGHT - h) // 2 + h] = cv2.resize(rgb, (WIDTH, h), interpolation=cv2.INTER_AREA)
    else:
        w = int(round(HEIGHT * aspect / 2)) * 2
        out[:, (WIDTH - w) // 2 : (WIDTH - w) // 2 + w] = cv2.resize(rgb, (w, HEIGHT), interpolation=cv2.INTER_AREA)
    return out


class _Edit:
    """Frames and ground truth, shot after shot."""

    def __init__(self):
        self.frames: list[np.ndarray] = []
        self.cuts: list[int] = []
        self.traps: list[list] = []

    def shot(self, camera: _Camera, seconds: float, cut: bool = True, post: Callable | None = None) -> int:
        start = len(self.frames)
        if cut and start:
            self.cuts.append(start)
        for i in range(int(round(seconds * FPS))):
            rgb = camera.frame()
            self.frames.append(post(rgb, i) if post else rgb)
        return start

    def trap(self, first: int, last: int, what: str) -> None:
        self.traps.append([first, last, what])


def _flicker(seed: int) -> _Edit:
    rng = np.random.default_rng(seed)
    edit = _Edit()
    a = _Camera(_photo("astronaut"), rng, centre=(0.45, 0.4))
    edit.shot(a, 2.0, cut=False)
    # VFX flicker: ~0.7 s of flashes of random strength, never back to the plain picture in
    # between, the camera shaken; then the same picture again.
    start = len(edit.frames)
    for s in rng.uniform(0.35, 0.95, 17):
        a.dx += rng.normal(0, 6)
        rgb = a.frame().astype(np.float32)
        edit.frames.append(np.clip(rgb + s * (np.float32([255, 248, 235]) - rgb), 0, 255).astype(np.uint8))
    edit.trap(start, len(edit.frames) - 1, "VFX flicker")
    edit.shot(a, 1.5, cut=False)
    b = _Camera(_photo("rocket"), rng, centre=(0.5, 0.55))
    edit.shot(b, 2.0)
    # An explosion: a fireball grows over most of the frame in 10 frames and dies in 14.
    start = len(edit.frames)
    for i in range(24):
        rgb = b.frame().astype(np.float32)
        radius = (i + 1) / 10 if i < 10 else 1.0
        strength = 1.0 if i < 10 else max(0.0, 1.0 - (i - 9) / 14)
        yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
        d = np.hypot((xx - 0.55 * WIDTH) / WIDTH, (yy - 0.6 * HEIGHT) / WIDTH) / (0.6 * radius)
        glow = (np.clip(1.0 - d, 0, 1) ** 0.6 * strength)[..., None]
        fire = np.float32([255, 170, 60]) * (0.8 + 0.2 * rng.random((HEIGHT, WIDTH, 1), dtype=np.float32))
        edit.frames.append(np.clip(rgb * (1 - glow) + fire * glow, 0, 255).astype(np.uint8))
    edit.trap(start, len(edit.frames) - 1, "explosion")
    edit.shot(b, 1.5, cut=False)
    # A real cutaway and back, 0.6 s: two cuts, though the picture returns.
    c = _Camera(_photo("coffee"), rng)
    edit.shot(c, 0.6)
    edit.shot(b, 2.0)
    # Lightning: three white frames, one dark, two white, within a quarter second.
    start = len(edit.frames)
    for s in (0.9, 0.8, 0.7, -0.5, 0.9, 0.6):
        rgb = b.frame().astype(np.float32)
        edit.frames.append(
            np.clip(rgb + s * (np.float32([230, 235, 255]) - rgb) if s > 0 else rgb * (1 + s), 0, 255).astype(np.uint8)
        )
    edit.trap(start, len(edit.frames) - 1, "lightning")
    edit.shot(b, 1.2, cut=False)
    return edit


def _same_set(seed: int) -> _Edit:
    rng = np.random.default_rng(seed)
    edit = _Edit()
    room = _photo("coffee")
    edit.shot(_Camera(room, rng, centre=(0.5, 0.5), zoom=1.0), 2.0, cut=False)
    edit.shot(_Camera(room, rng, centre=(0.53, 0.5), zoom=1.3), 2.0)  # wide -> medium, same axis
    edit.shot(_Camera(room, rng, centre=(0.45, 0.52), zoom=1.15), 2.0)  # a little to the left
    person = _photo("astronaut")
    edit.shot(_Camera(person, rng, centre=(0.5, 0.45), zoom=1.0), 2.0)
    edit.shot(_Camera(person, rng, centre=(0.5, 0.4), zoom=1.35), 2.0)  # medium -> close-up
    edit.shot(_Camera(person, rng, centre=(0.56, 0.45), zoom=1.1), 2.0)
    cat = _photo("chelsea")
    edit.shot(_Camera(cat, rng, centre=(0.5, 0.5), zoom=1.0), 2.0)
    edit.shot(_Camera(cat, rng, centre=(0.5, 0.5), zoom=1.0, flip=True), 2.0)  # reverse angle: mirrored
    edit.shot(_Camera(cat, rng, centre=(0.45, 0.45), zoom=1.25), 2.0)
    return edit


def _dark(seed: int) -> _Edit:
    rng = np.random.default_rng(seed)
    edit = _Edit()

    def night(gain: float):
        return lambda rgb, i: _grade(rgb, gain=(0.55 * gain, 0.6 * gain, 0.85 * gain), gamma=1.6)

    for k, (name, centre, zoom) in enumerate(
        [
            ("astronaut", (0.5, 0.45), 1.0),
            ("coffee", (0.5, 0.5), 1.2),
            ("chelsea", (0.45, 0.5), 1.0),
            ("astronaut", (0.55, 0.4), 1.4),
            ("rocket", (0.5, 0.6), 1.0),
            ("coffee", (0.4, 0.5), 1.0),
        ]
    ):
        camera = _Camera(_photo(name), rng, centre=centre, zoom=zoom, grain=3.0)
        edit.shot(camera, 1.6, cut=k > 0, post=night(0.45 if k % 2 else 0.35))
    return edit


def _joins(seed: int) -> _Edit:
    rng = np.random.default_rng(seed)
    edit = _Edit()

    # Source 1: an old 4:3 programme, pillarboxed, desaturated.
    def old(rgb, i):
        grey = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        return _boxed(_grade(grey // 2 + rgb // 2, gamma=1.1), 4 / 3)

    edit.shot(_Camera(_photo("chelsea"), rng), 1.5, cut=False, post=old)
    edit.shot(_Camera(_photo("coffee"), rng, zoom=1.2), 1.5, post=old)
    # Source 2: letterboxed scope, teal and orange; its first shot dims slowly at the end.
    scope = lambda rgb, i: _boxed(_grade(rgb, gain=(1.08, 0.98, 0.9), lift=0.02), 2.39)  # noqa: E731
    edit.shot(_Camera(_photo("rocket"), rng), 1.5, post=scope)
    edit.shot(_Camera(_photo("astronaut"), rng, zoom=1.3), 1.5, post=scope)
    edit.shot(
        _Camera(_photo("coffee"), rng, centre=(0.4, 0.5)),
        1.6,
        post=lambda rgb, i: _grade(scope(rgb, i), gain=(max(0.12, 1 - i / 30),) * 3),
    )
    # Source 3: full frame, cold; starts straight out of the dim end of source 2.
    cold = lambda rgb, i: _grade(rgb, gain=(0.85, 0.95, 1.12))  # noqa: E731
    edit.shot(_Camera(_photo("immunohistochemistry"), rng), 1.5, post=cold)
    edit.shot(_Camera(_photo("astronaut"), rng, centre=(0.5, 0.35), zoom=1.2), 1.5, post=cold)
    # Source 4: pillarboxed again, a different programme.
    edit.shot(_Camera(_photo("hubble_deep_field"), rng), 1.5, post=lambda rgb, i: _boxed(rgb, 4 / 3))
    edit.shot(_Camera(_photo("rocket"), rng, zoom=1.3), 1.5, post=lambda rgb, i: _boxed(rgb, 4 / 3))
    return edit


def _cartoon(seed: int) -> _Edit:
    """Flat-colour drawings: a few shapes on a plain ground, one palette for the whole
    scene, each shot a new composition of the same shapes (a cel-animation edit)."""
    rng = np.random.default_rng(seed)
    edit = _Edit()
    palette = np.array([[236, 214, 170], [222, 196, 150], [120, 86, 60], [196, 120, 80], [90, 120, 160]], np.uint8)

    class Drawing:
        def __init__(self):
            self.shapes = [
                (rng.integers(0, WIDTH), rng.integers(HEIGHT // 3, HEIGHT), rng.integers(30, 110), rng.integers(2, 5))
                for _ in range(5)
            ]
            self.ground = rng.integers(0, 2)
            self.t = 0

        def frame(self) -> np.ndarray:
            rgb = np.empty((HEIGHT, WIDTH, 3), np.uint8)
            rgb[:] = palette[self.ground]
            rgb[int(HEIGHT * 0.7) :] = palette[1 - self.ground]
            for k, (x, y, r, colour) in enumerate(self.shapes):
                dx = int(3 * np.sin(0.2 * self.t + k))  # small animated motion
                cv2.circle(rgb, (int(x) + dx, int(y)), int(r), palette[colour].tolist(), -1, cv2.LINE_AA)
                cv2.circle(rgb, (int(x) + dx, int(y)), int(r), (40, 30, 20), 2, cv2.LINE_AA)
            self.t += 1
            return rgb

    for k in range(6):
        edit.shot(Drawing(), 1.5, cut=k > 0)
    return edit


_BUILDERS: dict[str, Callable[[int], _Edit]] = {
    "flicker": _flicker,
    "same_set": _same_set,
    "dark": _dark,
    "joins": _joins,
    "cartoon": _cartoon,
}
CLIPS = tuple(_BUILDERS)


def render_clip(name: str, path: str | Path, seed: int = 7) -> dict:
    """Write clip `name` to `path` (H.264, yuv420p); return its ground truth."""
    edit = _BUILDERS[name](seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast", "g": "48", "threads": "1"}
        for index, rgb in enumerate(edit.frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return {
        "name": name,
        "frames": len(edit.frames),
        "fps": FPS,
        "cut_frames": edit.cuts,
        "cuts_s": [round(c / FPS, 6) for c in edit.cuts],
        "traps": edit.traps,
    }
